/* Refiner widget (SPEC §7): no dependencies, no build step; see docs/widget.md.
 * Every entry point is guarded: nothing here may throw into the host page. */
(function () {
"use strict";
var w = window, d = document, has = Object.prototype.hasOwnProperty;
if (w._refiner && w._refiner.loaded) return; // the snippet pasted twice

var SRC = "/static/refiner/widget.js", TIMEOUT_MS = 10000, THANKS_MS = 4000;
var state = { api: scriptOrigin() }; // key, user, signature, blocked, busy, card, lastUrl, warned
var callbacks = { onShow: [], onComplete: [], onDismiss: [], onError: [] };
var chain = Promise.resolve(); // network calls run in the order the page made them

function scriptOrigin() {
  var el = d.currentScript, all = d.getElementsByTagName("script"), i;
  for (i = 0; (!el || !el.src) && i < all.length; i++) {
    if ((all[i].src || "").split(/[?#]/)[0].slice(-SRC.length) === SRC) el = all[i];
  }
  try { return new URL(el.src, location.href).origin; } catch (e) { return location.origin; }
}

function guard(fn) {
  try { fn(); } catch (e) { warn("internal error: " + e); }
}

// A callback for timers and listeners: what it throws never reaches the host page.
function safe(fn) {
  return function () { var args = arguments; guard(function () { fn.apply(null, args); }); };
}

function warn(message) {
  if (state.warned || !w.console || !console.warn) return;
  state.warned = true; // once: a broken network must not flood the host's console
  console.warn("Refiner: " + message);
}

function emit(name, payload) {
  callbacks[name].slice().forEach(function (fn) {
    try { fn(payload); } catch (e) { warn(name + " callback threw: " + e); }
  });
}

function fail(call, status, code, message) {
  var error = { call: call, status: status, code: code, message: message };
  warn(call + " failed: " + message);
  emit("onError", error);
  return error;
}

// POST JSON; resolves with {ok, data} or {ok: false, error}; never rejects.
function post(call, path, body) {
  var abort = w.AbortController ? new AbortController() : null;
  var timer = abort && setTimeout(function () { abort.abort(); }, TIMEOUT_MS);
  return new Promise(function (resolve) {
    body.workspace = state.key;
    resolve(fetch(state.api + "/api/v1/widget/" + path, {
      method: "POST", credentials: "omit", keepalive: /dismiss$/.test(path),
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      signal: abort && abort.signal
    }));
  }).then(function (response) {
    return response.json().catch(function () { return {}; }).then(function (data) {
      if (response.ok) return { ok: true, data: data || {} };
      var e = (data && data.error) || {}, status = response.status;
      return { ok: false, error: fail(call, status, e.code || "http_" + status, e.message || "HTTP " + status) };
    });
  }, function (e) {
    return { ok: false, error: fail(call, 0, "network_error", String((e && e.message) || e)) };
  }).then(function (result) { clearTimeout(timer); return result; });
}

function later(task) {
  chain = chain.then(task).catch(function (e) { warn("internal error: " + e); });
}

function withUser(body) {
  body.user_id = state.user;
  if (state.signature) body.signature = state.signature;
  return body;
}

// Ask which survey to show; show the first after its delay, one at a time.
function check(extra, now) {
  later(function () {
    if (!state.key || !state.user || state.blocked || state.busy) return;
    var body = withUser({ url: String(location.href), event: extra.event, survey: extra.survey });
    var user = state.user;
    state.lastUrl = location.href;
    return post("eligibility", "eligibility", body).then(function (result) {
      var survey = result.ok && result.data.surveys && result.data.surveys[0];
      if (!survey || !(survey.questions || []).length || state.busy || user !== state.user) return;
      state.busy = true;
      var delay = now ? 0 : Math.max(0, Number(survey.delay_seconds) || 0) * 1000;
      state.timer = setTimeout(safe(open), delay, survey, user, body);
    });
  });
}

// The server re-checks targeting for this event and page.
function open(survey, user, asked) {
  asked.survey = survey.id;
  post("displays", "displays", asked).then(function (result) {
    if (result.ok && user === state.user && state.busy && !state.card) {
      guard(function () { render(survey, String(result.data.display)); });
    } else if (!state.card) {
      state.busy = false;
    }
  });
}

function close(dismiss) {
  var card = state.card;
  clearTimeout(state.timer);
  state.busy = false;
  state.card = null;
  if (!card) return;
  clearTimeout(card.timer);
  if (card.host.parentNode) card.host.parentNode.removeChild(card.host);
  var back = card.returnFocus;
  if (back && d.contains(back)) guard(function () { back.focus(); });
  if (dismiss && !card.done) {
    later(function () { return post("dismiss", "displays/" + card.display + "/dismiss", card.who); });
    emit("onDismiss", { survey: card.survey.id, display: card.display });
  }
}

// The card: a shadow root whose styles the host page cannot reach.
var GREY = "color:#6a7080;", LINE = "border:1px solid #cfd3dc;border-radius:6px;";
var CSS = [
  ":host{all:initial!important;display:block!important}",
  ".card{all:initial;display:block;position:fixed;z-index:2147483647;right:16px;bottom:16px;width:360px;",
  "max-width:calc(100vw - 32px);box-sizing:border-box;padding:16px 16px 14px;background:#fff;",
  "color:#1f2330;border:1px solid #d9dce3;border-radius:12px;box-shadow:0 8px 28px rgba(20,24,40,.18);",
  "font:14px/1.4 system-ui,sans-serif;text-align:left}",
  ".card *{box-sizing:border-box;font:inherit;color:inherit}",
  ".top{display:flex;align-items:center;justify-content:space-between;margin:0 0 8px}",
  ".progress,.legend{font-size:12px;" + GREY + "}",
  ".opt,.next,.close{all:unset;box-sizing:border-box;cursor:pointer}",
  ".close{width:28px;height:28px;border-radius:6px;text-align:center;",
  "font-size:20px;line-height:28px;" + GREY + "}",
  ".q,.thanks{margin:0 0 12px;font-size:15px;font-weight:600;line-height:1.35}",
  ".scale{display:grid;gap:4px;grid-template-columns:repeat(11,minmax(0,1fr))}",
  ".scale.rating{grid-template-columns:repeat(5,minmax(0,1fr))}",
  ".opt{height:36px;" + LINE + "background:#f7f8fa;",
  "text-align:center;line-height:34px}",
  ".opt:hover{background:#e8ebff}",
  ".legend{display:flex;justify-content:space-between;margin:6px 0 0}",
  ".choice{display:flex;align-items:center;gap:8px;margin:0 0 6px;padding:8px 10px;cursor:pointer;" + LINE + "}",
  ".choice input{margin:0;accent-color:#4453e6}",
  "textarea{display:block;width:100%;min-height:84px;padding:8px;background:#fff;resize:vertical;" + LINE + "}",
  ".next{display:inline-block;margin:10px 0 0;padding:0 16px;",
  "height:34px;line-height:34px;border-radius:6px;background:#4453e6;color:#fff;font-weight:600}",
  ".next[disabled]{opacity:.45;cursor:default}",
  ":focus-visible{outline:2px solid #4453e6;outline-offset:2px}"
].join("");

function el(tag, attrs, text, parent) {
  var node = d.createElement(tag), name;
  for (name in attrs) if (has.call(attrs, name)) node.setAttribute(name, attrs[name]);
  if (text != null) node.textContent = String(text);
  if (parent) parent.appendChild(node);
  return node;
}

function render(survey, display) {
  var host = el("refiner-survey", { "data-survey": survey.id });
  // Open, so assistive tools and tests can reach in; isolation comes from the styles.
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  el("style", {}, CSS, root);
  var box = el("div", { "class": "card", role: "dialog", "aria-labelledby": "q" }, null, root);
  var card = state.card = { host: host, box: box, survey: survey, display: display, step: 0,
    answers: {}, done: false, who: withUser({}), returnFocus: d.activeElement };
  box.addEventListener("keydown", safe(function (event) {
    if (event.key === "Escape") { event.stopPropagation(); close(true); }
  }));
  (d.body || d.documentElement).appendChild(host);
  step(card);
  emit("onShow", { survey: survey.id, display: display });
}

function header(card, progress) {
  card.box.textContent = "";
  var top = el("div", { "class": "top" }, null, card.box);
  el("span", { "class": "progress" }, progress, top);
  var x = el("button", { type: "button", "class": "close", "aria-label": "Close survey" }, "\u00d7", top);
  x.addEventListener("click", safe(close.bind(null, true)));
}

function step(card) {
  var questions = card.survey.questions, q = questions[card.step], type = q.type;
  card.last = !questions[card.step + 1];
  header(card, card.step + 1 + " / " + questions.length);
  var form = el("form", { novalidate: "" }, null, card.box);
  el("p", { "class": "q", id: "q" }, q.text, form);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  var submit = safe(answer.bind(null, card, q));
  if (/^(nps|rating)$/.test(type)) scale(form, type === "nps", submit);
  else if (/choice$/.test(type)) choices(form, q, submit);
  else text(form, submit);
  var first = form.querySelector("button,input,textarea");
  if (first) first.focus();
}

function scale(form, nps, submit) {
  var high = nps ? 10 : 5, n;
  var row = el("div", { "class": nps ? "scale" : "scale rating", role: "group", "aria-labelledby": "q" }, null, form);
  for (n = nps ? 0 : 1; n <= high; n++) {
    el("button", { type: "button", "class": "opt", "aria-label": n + " of " + high }, n, row)
      .addEventListener("click", submit.bind(null, n));
  }
  var legend = el("div", { "class": "legend", "aria-hidden": "true" }, null, form);
  el("span", {}, nps ? "Not likely" : "Poor", legend);
  el("span", {}, nps ? "Very likely" : "Excellent", legend);
}

function nextButton(form, ready, value) {
  var next = el("button", { type: "submit", "class": "next", disabled: "" }, state.card.last ? "Submit" : "Next", form);
  form.addEventListener("input", function () { next.disabled = !ready(); });
  next.addEventListener("click", function (event) {
    event.preventDefault();
    if (ready()) value();
  });
}

function choices(form, q, submit) {
  var many = q.type === "multiple_choice", list = q.choices || [];
  var group = el("div", { role: many ? "group" : "radiogroup", "aria-labelledby": "q" }, null, form);
  var inputs = list.map(function (choice) {
    var label = el("label", { "class": "choice" }, null, group);
    var input = el("input", { type: many ? "checkbox" : "radio", name: "choice", value: choice }, null, label);
    el("span", {}, choice, label);
    return input;
  });
  var picked = function () { return list.filter(function (c, i) { return inputs[i].checked; }); };
  nextButton(form, function () { return picked().length > 0; }, function () {
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
  var last = card.last, body = withUser({ completed: last });
  body.answers = {};
  body.answers[q.key] = card.answers[q.key] = value;
  later(function () {
    return post("answers", "displays/" + card.display + "/answers", body).then(function (result) {
      if (last && result.ok) {
        emit("onComplete", { survey: card.survey.id, display: card.display, answers: card.answers });
      }
    });
  });
  if (!last) { card.step += 1; step(card); return; }
  card.done = true;
  header(card, "");
  el("p", { "class": "thanks", id: "q", tabindex: "-1" }, "Thank you!", card.box).focus();
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
    if (!user || user.id == null || user.id === "") {
      fail("identifyUser", 0, "no_user_id", "identifyUser needs a user with an id");
      return;
    }
    if (String(user.id) !== state.user) close(false);
    state.user = String(user.id);
    state.signature = signed.signature || null;
    state.blocked = false;
    if (!state.key) { fail("identifyUser", 0, "no_project", "call setProject(widgetKey) first"); return; }
    var body = { user: user, signature: state.signature || undefined,
      account_signature: signed.accountSignature || undefined };
    later(function () {
      return post("identify", "identify", body).then(function (result) {
        // A refused key or signature would be refused again: quiet until the next identify.
        if (!result.ok && (result.error.status === 401 || result.error.status === 403)) state.blocked = true;
      });
    });
    check({});
  },
  trackEvent: function (name) {
    if (!state.key || !state.user) return; // anonymous visitors are not contacts
    if (typeof name !== "string" || !name) { fail("trackEvent", 0, "bad_event", "trackEvent needs a name"); return; }
    var body = withUser({ event: name });
    later(function () { if (!state.blocked) return post("track", "track", body); });
    check({ event: name });
  },
  showForm: function (surveyId) {
    var id = parseInt(surveyId, 10);
    if (isNaN(id)) { fail("showForm", 0, "bad_survey", "showForm needs a survey id"); return; }
    check({ survey: id }, true);
  },
  resetUser: function () {
    close(false);
    state.user = state.signature = null;
    state.blocked = false;
  }
};

function run(args) {
  guard(function () {
    var name = args[0];
    if (has.call(callbacks, name)) {
      if (typeof args[1] === "function") callbacks[name].push(args[1]);
    } else if (has.call(commands, name)) {
      commands[name](args[1], args[2]);
    } else {
      warn("unknown call " + name);
    }
  });
}

// Single-page apps: a new URL is a new chance to show a survey.
function navigated() {
  setTimeout(safe(function () { if (location.href !== state.lastUrl) check({}); }), 0);
}
guard(function () {
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    if (typeof original !== "function") return;
    history[name] = function () {
      var result = original.apply(this, arguments);
      navigated();
      return result;
    };
  });
  w.addEventListener("popstate", navigated);
});

var queued = w._refinerQueue || [];
w._refiner = function () { run(arguments); };
w._refiner.loaded = true;
w._refinerQueue = { push: run }; // a stub someone kept a reference to still works
for (var i = 0; i < queued.length; i++) run(queued[i]);
})();
