// The segment editor's small helpers, in a file of their own: the CSP allows no inline script.
//
// 1. Leaving the page with unsaved changes asks first (the browser's own prompt).
//    Any typing, choice or added/removed row makes the form dirty; saving clears it.
// 2. A date picker beside a before/after value writes the date into the value box,
//    which still takes a date and time typed by hand.
(function () {
  "use strict";

  var form = document.getElementById("segment-form");
  if (!form) return;
  var dirty = false;

  function markDirty() { dirty = true; }

  form.addEventListener("input", markDirty);
  form.addEventListener("change", markDirty);
  // The add/remove buttons post through htmx (no submit event) and change the rule.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (source && source.name === "op") markDirty();
  });
  form.addEventListener("submit", function () { dirty = false; });

  window.addEventListener("beforeunload", function (event) {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = "";  // Chromium shows its prompt only when this is set.
  });

  // A date typed in the box moves the picker to it (a time after the date is kept in the box).
  form.addEventListener("input", function (event) {
    var box = event.target;
    var picker = box.id && document.querySelector('.date-pick[data-value="' + box.id + '"]');
    var date = picker && /^\d{4}-\d{2}-\d{2}/.exec(box.value);
    if (date) picker.value = date[0];
  });

  form.addEventListener("change", function (event) {
    var picker = event.target;
    if (!picker.classList || !picker.classList.contains("date-pick") || !picker.value) return;
    var box = document.getElementById(picker.dataset.value);
    if (!box) return;
    box.value = picker.value;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.dispatchEvent(new Event("change", { bubbles: true }));
  });
})();
