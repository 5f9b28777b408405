/* Refiner widget (SPEC §7): no dependencies, no build step; see docs/widget.md.
 * Every entry point is guarded: nothing here may throw into the host page. */
(function () {
"use strict";
var w = window, d = document, has = Object.prototype.hasOwnProperty;
if (w._refiner && w._refiner.loaded) return; // the snippet pasted twice

var SRC = "/static/refiner/widget.js", TIMEOUT_MS = 10000, THANKS_MS = 4000;
var state = { api: scriptOrigin(), waiting: [] };
var callbacks = { onBeforeShow: [], onShow: [], onNavigation: [], onRequestResponse: [],
  onComplete: [], onDismiss: [], onClose: [], onError: [] };
var chain = Promise.resolve(); // network calls run in the page's order

function scriptOrigin() {
  var el = d.currentScript;
  if (!el || !el.src) el = d.querySelector('script[src*="' + SRC + '"]');
  try { return new URL(el.src, location.href).origin; } catch (e) { return location.origin; }
}

// What timers, listeners and callbacks throw never reaches the page.
function safe(fn) {
  return function () { try { return fn.apply(null, arguments); } catch (e) { warn("error: " + e); } };
}

function guard(fn) { safe(fn)(); }

function warn(message) {
  if (state.warned || !w.console) return;
  state.warned = true; // once: a dead server must not flood it
  console.warn("Refiner: " + message);
}

// False when a callback returned false (onBeforeShow's veto).
function emit(name, payload) {
  return callbacks[name].slice().map(function (fn) { return safe(fn)(payload); }).indexOf(false) < 0;
}

function fail(call, status, code, message) {
  var error = { call: call, status: status, code: code, message: message };
  warn(call + " failed: " + message);
  emit("onError", error);
  return error;
}

// POST JSON; resolves with {ok, data} or {ok: false, error}; never rejects.
function post(path, body) {
  var call = path.replace(/.*\//, ""), abort = w.AbortController ? new AbortController() : null;
  var timer = abort && setTimeout(function () { abort.abort(); }, TIMEOUT_MS);
  return new Promise(function (resolve) {
    body.workspace = state.key;
    resolve(fetch(state.api + "/api/v1/widget/" + path, {
      method: "POST", credentials: "omit", keepalive: /dismiss$/.test(path),
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: abort && abort.signal
    }));
  }).then(function (res) {
    return res.json().catch(function () { return {}; }).then(function (data) {
      if (res.ok) return { ok: true, data: data || {} };
      var e = (data && data.error) || {}, status = res.status;
      return { ok: false, error: fail(call, status, e.code || "http_" + status, e.message || "HTTP " + status) };
    });
  }, function (e) {
    return { ok: false, error: fail(call, 0, "network_error", String(e && e.message || e)) };
  }).then(function (r) { clearTimeout(timer); return r; });
}

function later(task) {
  chain = chain.then(task).catch(function (e) { warn("error: " + e); });
}

// An id kept in the browser: the anonymous visitor's (localStorage) or the session's
// (sessionStorage, docs/widget.md). Storage may be refused (privacy modes): then the page's life.
function kept(store, name, make) {
  var key = "refiner." + name;
  try { store = w[store]; return store.getItem(key) || make && (store.setItem(key, make = id()), make); }
  catch (e) { return state[key] || make && (state[key] = id()); }
}

function id() {
  return [].map.call(crypto.getRandomValues(new Uint8Array(16)), function (b) { return (b | 256).toString(16).slice(1); }).join("");
}

function withUser(body) {
  if (state.user) { body.user_id = state.user; body.signature = state.signature; }
  else body.anonymous_id = kept("localStorage", "anonymous", 1);
  body.session = kept("sessionStorage", "session", 1);
  return body;
}

// Ask which survey to show (or get a preview), one at a time: a check made while one
// waits or shows is kept for when it closes.
function check(extra) {
  var user = state.user; // for this user only
  later(function () {
    if (state.busy) return void state.waiting.push(extra);
    // stopPinging: only what the page asks for by name still asks.
    var asked = extra.preview || extra.survey;
    if (!state.key || !asked && state.stopped || !extra.preview && (user !== state.user || state.blocked
      || !user && state.noVisitors)) return;
    if (extra.page && location.href === state.lastUrl) return;
    var body = withUser({ url: location.href, event: extra.event, survey: extra.survey });
    if (!extra.preview) state.lastUrl = location.href;
    return (extra.preview ? post("preview", { token: extra.preview })
      : post("eligibility", body)).then(function (r) {
      var data = r.ok ? r.data : {}, survey = data.survey || (data.surveys || [])[0];
      if (data.visitors === false) state.noVisitors = true; // no survey is for anonymous visitors
      if (!survey || !(survey.questions || []).length || !extra.preview && user !== state.user) return;
      state.busy = extra; // its turn
      extra.id = survey.id;
      var delay = extra.now || extra.preview ? 0 : survey.delay_seconds * 1000;
      state.timer = setTimeout(safe(open), delay, survey, body, extra);
    });
  });
}

// The server checks targeting again; a preview records nothing.
function open(survey, asked, turn) {
  var show = function (display) {
    if (state.busy !== turn) return; // closed meanwhile
    if (display !== false) guard(function () { render(survey, display); });
    if (!state.card) close(false);
  };
  if (turn.preview) return show(null);
  if (!emit("onBeforeShow", { survey: survey.id, name: survey.name })) return close(false);
  asked.survey = survey.id;
  post("displays", asked).then(function (r) { show(r.ok && String(r.data.display)); });
}

// forget: another user; their waiting checks go.
function close(dismiss, forget) {
  var card = state.card, waiting = forget ? [] : state.waiting;
  clearTimeout(state.timer);
  state.busy = state.card = null;
  state.waiting = [];
  if (card) {
    clearTimeout(card.timer);
    card.host.remove();
    var back = card.returnFocus;
    if (d.contains(back)) guard(function () { back.focus(); });
    var about = { survey: card.survey.id, display: card.display };
    if (dismiss && !card.done && card.display) {
      later(function () { return post("displays/" + card.display + "/dismiss", withUser({})); });
      emit("onDismiss", about);
    }
    if (card.display) emit("onClose", about);
  }
  waiting.forEach(check);
}

// The card: a shadow root the host page's styles cannot reach.
var GREY = "color:#6a7080;", LINE = "border:1px solid #cfd3dc;border-radius:6px;", BLUE = "#4453e6";
var CSS = ":host{all:initial!important;display:block!important}" +
  ".card{all:initial;display:block;position:fixed;z-index:2147483647;right:16px;bottom:16px;width:360px;" +
  "max-width:calc(100vw - 32px);box-sizing:border-box;padding:16px 16px 14px;background:#fff;color:#1f2330;" +
  "border:1px solid #d9dce3;border-radius:12px;box-shadow:0 8px 28px rgba(20,24,40,.18);" +
  "font:14px/1.4 system-ui,sans-serif;text-align:left}.card *{box-sizing:border-box;font:inherit;color:inherit}" +
  ".top,.legend{display:flex;align-items:center;justify-content:space-between;margin:0 0 8px}" +
  ".progress,.legend{font-size:12px;" + GREY + "}.opt,.next,.close{all:unset;box-sizing:border-box;cursor:pointer}" +
  ".close{width:28px;border-radius:6px;text-align:center;font-size:20px;line-height:28px;" + GREY + "}" +
  ".q,.thanks{margin:0 0 12px;font-size:15px;font-weight:600;line-height:1.35}" +
  ".scale{display:grid;gap:4px;grid-template-columns:repeat(11,minmax(0,1fr))}" +
  ".rating{grid-template-columns:repeat(5,minmax(0,1fr))}" +
  ".opt{" + LINE + "background:#f7f8fa;text-align:center;line-height:34px}.opt:hover{background:#e8ebff}" +
  ".legend{margin:6px 0 0}.choice{display:flex;align-items:center;gap:8px;margin:0 0 6px;padding:8px 10px;" +
  "cursor:pointer;" + LINE + "}.choice input{margin:0;accent-color:" + BLUE + "}textarea{display:block;width:100%;" +
  "min-height:84px;padding:8px;background:#fff;resize:vertical;" + LINE + "}.next{display:inline-block;" +
  "margin:10px 0 0;padding:0 16px;line-height:34px;border-radius:6px;background:" + BLUE + ";" +
  "color:#fff;font-weight:600}.next[disabled]{opacity:.45;cursor:default}" +
  ":focus-visible{outline:2px solid " + BLUE + ";outline-offset:2px}";

function el(tag, attrs, text, parent) {
  var node = d.createElement(tag), name;
  for (name in attrs) if (has.call(attrs, name)) node.setAttribute(name, attrs[name]);
  if (text != null) node.textContent = String(text);
  if (parent) parent.appendChild(node);
  return node;
}

function render(survey, display) {
  var host = el("refiner-survey", { "data-survey": survey.id });
  // Open, for assistive tools and tests: the styles isolate it.
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  el("style", {}, CSS, root);
  var box = el("div", { class: "card", role: "dialog", "aria-labelledby": "q" }, null, root);
  var card = state.card = { host: host, box: box, survey: survey, display: display, step: 0,
    answers: {}, returnFocus: d.activeElement };
  box.addEventListener("keydown", safe(function (e) {
    if (e.key === "Escape") { e.stopPropagation(); close(true); }
  }));
  (d.body || d.documentElement).appendChild(host);
  step(card);
  if (display) emit("onShow", { survey: survey.id, display: display });
}

function header(card, progress) {
  card.box.textContent = "";
  var top = el("div", { class: "top" }, null, card.box);
  el("span", { class: "progress" }, progress, top);
  el("button", { type: "button", class: "close", "aria-label": "Close survey" }, "×", top)
    .addEventListener("click", safe(function () { close(true); }));
  if (!card.display) el("div", { class: "top progress" }, "Preview: answers are not saved", card.box);
}

function step(card) {
  var questions = card.survey.questions, q = questions[card.step], type = q.type;
  card.last = !questions[card.step + 1];
  header(card, card.step + 1 + " / " + questions.length);
  var form = el("form", { novalidate: "" }, null, card.box);
  el("p", { class: "q", id: "q" }, q.text, form);
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  var submit = safe(answer.bind(null, card, q));
  if (/^(nps|rating)$/.test(type)) scale(form, type === "nps", submit);
  else if (/choice$/.test(type)) choices(form, q, submit);
  else text(form, submit);
  form.querySelector("button,input,textarea").focus();
}

function scale(form, nps, submit) {
  var high = nps ? 10 : 5, n;
  var row = el("div", { class: nps ? "scale" : "scale rating", role: "group", "aria-labelledby": "q" }, null, form);
  for (n = nps ? 0 : 1; n <= high; n++) {
    el("button", { type: "button", class: "opt", "aria-label": n + " of " + high }, n, row)
      .addEventListener("click", submit.bind(null, n));
  }
  var legend = el("div", { class: "legend", "aria-hidden": "true" }, null, form);
  el("span", {}, nps ? "Not likely" : "Poor", legend);
  el("span", {}, nps ? "Very likely" : "Excellent", legend);
}

function nextButton(form, ready, value) {
  var next = el("button", { type: "submit", class: "next", disabled: "" }, state.card.last ? "Submit" : "Next", form);
  form.addEventListener("input", function () { next.disabled = !ready(); });
  next.addEventListener("click", function (e) { e.preventDefault(); if (ready()) value(); });
}

function choices(form, q, submit) {
  var many = q.type === "multiple_choice", list = q.choices || [];
  var group = el("div", { role: many ? "group" : "radiogroup", "aria-labelledby": "q" }, null, form);
  var inputs = list.map(function (choice) {
    var label = el("label", { class: "choice" }, null, group);
    var input = el("input", { type: many ? "checkbox" : "radio", name: "choice", value: choice }, null, label);
    el("span", {}, choice, label);
    return input;
  });
  var picked = function () { return list.filter(function (c, i) { return inputs[i].checked; }); };
  nextButton(form, function () { return picked().length; }, function () {
    submit(many ? picked() : picked()[0]);
  });
}

function text(form, submit) {
  var area = el("textarea", { maxlength: "5000", "aria-labelledby": "q" }, null, form);
  var value = function () { return area.value.trim(); };
  nextButton(form, value, function () { submit(value()); });
}

function answer(card, q, value) {
  if (state.card !== card || card.done) return;
  var last = card.last, answers = {}, about = { survey: card.survey.id, display: card.display };
  answers[q.key] = card.answers[q.key] = value;
  if (card.display) later(function () {
    // Who is named when it is sent: an identify since may have merged the visitor.
    var body = withUser({ completed: last, answers: answers, extra: state.extra });
    emit("onRequestResponse", { survey: about.survey, display: about.display, answers: answers,
      completed: last, extra: state.extra || {} });
    return post("displays/" + card.display + "/answers", body).then(function (r) {
      if (last && r.ok) emit("onComplete", { survey: about.survey, display: about.display, answers: card.answers });
    });
  });
  if (card.display) emit("onNavigation", { survey: about.survey, display: about.display, step: card.step + 1,
    done: last });
  if (!last) { card.step++; return step(card); }
  card.done = true;
  header(card, "");
  el("p", { class: "thanks", id: "q", tabindex: "-1" }, "Thank you!", card.box).focus();
  el("p", {}, "Your feedback helps us improve.", card.box);
  card.timer = setTimeout(safe(function () { if (state.card === card) close(false); }), THANKS_MS);
}

var commands = {
  setProject: function (key) { state.key = typeof key === "string" && key; },
  setApiHost: function (url) {
    try { state.api = new URL(String(url), location.href).href.replace(/\/+$/, ""); }
    catch (e) { fail("setApiHost", 0, "bad_host", "not a URL: " + url); }
  },
  identifyUser: function (user, signed) {
    signed = signed || {};
    if (!user || user.id == null || user.id === "") return void fail("identifyUser", 0, "no_user_id", "needs an id");
    if (state.user && String(user.id) !== state.user) close(false, true); // a preview stays
    state.user = String(user.id);
    state.signature = signed.signature || null;
    state.blocked = false;
    if (!state.key) return void fail("identifyUser", 0, "no_project", "call setProject first");
    var visitor = kept("localStorage", "anonymous"); // merged into the user by the server
    var body = { user: user, signature: state.signature, account_signature: signed.accountSignature,
      anonymous_id: visitor || undefined };
    later(function () {
      return post("identify", body).then(function (r) {
        // Refused again if retried: quiet until the next identify.
        if (!r.ok && (r.error.status === 401 || r.error.status === 403)) state.blocked = true;
        if (r.ok && visitor) forgetVisitor();
      });
    });
    check({});
  },
  trackEvent: function (name) {
    if (!state.key || !state.user && state.noVisitors) return;
    if (typeof name !== "string" || !name) return void fail("trackEvent", 0, "bad_event", "needs a name");
    var body = withUser({ event: name });
    later(function () { if (!state.blocked) return post("track", body); });
    check({ event: name });
  },
  showForm: function (surveyId) {
    var id = parseInt(surveyId, 10);
    if (isNaN(id)) return void fail("showForm", 0, "bad_survey", "needs a survey id");
    check({ survey: id, now: true });
  },
  previewForm: function (token) {
    if (!token || typeof token !== "string") fail("previewForm", 0, "bad_token", "needs a token");
    else check({ preview: token });
  },
  resetUser: function () {
    close(false, true);
    forgetVisitor(); // the next visitor of this browser is someone else
    state.user = state.signature = state.blocked = null;
  },
  dismissForm: function (surveyId) { if (showing(surveyId)) close(true); },
  closeForm: function (surveyId) { if (showing(surveyId)) close(false); },
  addToResponse: function (data) {
    // Sent with each answer from now on (null forgets it); the server checks it.
    state.extra = data && typeof data === "object" ? JSON.parse(JSON.stringify(data)) : null;
  },
  stopPinging: function () { state.stopped = true; }
};

// Is that survey's card shown, or waiting for its delay?
function showing(surveyId) { return state.busy && String(state.busy.id) === String(surveyId); }

function forgetVisitor() {
  try { localStorage.removeItem("refiner.anonymous"); } catch (e) { /* refused storage */ }
  delete state["refiner.anonymous"];
}

var run = safe(function (args) {
  var name = args[0];
  if (has.call(callbacks, name)) { if (typeof args[1] === "function") callbacks[name].push(args[1]); }
  else if (has.call(commands, name)) commands[name](args[1], args[2]);
  else warn("unknown call " + name);
});

// Single-page apps: a new URL is a new chance (check skips an unchanged one).
function navigated() { setTimeout(check, 0, { page: true }); }
guard(function () {
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    if (typeof original === "function") history[name] = function () {
      try { return original.apply(this, arguments); } finally { navigated(); }
    };
  });
  w.addEventListener("popstate", navigated);
});

var queued = w._refinerQueue || [];
w._refiner = function () { run(arguments); };
w._refiner.loaded = true;
w._refinerQueue = { push: run }; // for a kept reference
// A preview link (docs/widget.md) goes first.
guard(function () {
  var token = new URLSearchParams(location.search).get("refiner_preview");
  if (token) run(["previewForm", token]);
});
[].forEach.call(queued, run);
// Nobody identified by now: an anonymous visitor, whom a survey may be for.
if (!state.user) check({});
})();
