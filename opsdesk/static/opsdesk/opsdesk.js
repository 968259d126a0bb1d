/* opsdesk's page behaviour, kept out of the templates so the CSP needs no inline script.
 * Delegated from the document: this file loads in <head>, before the elements exist. */

// <select data-od-autosubmit>: changing the value submits its form (triage priority).
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-od-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});

// <input type=checkbox data-od-select-all="NAME">: ticks or clears every box named NAME
// (the inbox's bulk selection).
document.addEventListener("click", (event) => {
  const all = event.target.closest("input[data-od-select-all]");
  if (!all) return;
  const name = all.dataset.odSelectAll;
  document.querySelectorAll(`input[type=checkbox][name="${name}"]`).forEach((box) => {
    box.checked = all.checked;
  });
});

// <iframe data-od-fit-content>: as tall as the document it shows (the digest preview's
// email). `load` does not bubble, hence the capture phase.
document.addEventListener(
  "load",
  (event) => {
    const frame = event.target;
    if (frame.matches?.("iframe[data-od-fit-content]") && frame.contentDocument) {
      frame.style.height = `${frame.contentDocument.documentElement.scrollHeight}px`;
    }
  },
  true,
);

// <form data-od-submit-once>: a second submit while the first is under way is dropped,
// so a double click on "Send reply" sends one reply (the ticket page).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches?.("form[data-od-submit-once]")) return;
  if (form.dataset.odSubmitting) {
    event.preventDefault();
    return;
  }
  form.dataset.odSubmitting = "1";
});
// Back to a page kept in the browser's cache: its form can be sent again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  document.querySelectorAll("form[data-od-submit-once]").forEach((form) => {
    delete form.dataset.odSubmitting;
  });
});

// [data-od-scroll-end]: a box that scrolls sideways opens at its right end, where the
// latest week of a table by week is (the scorecard on a phone), not at the oldest.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-od-scroll-end]").forEach((box) => {
    box.scrollLeft = box.scrollWidth;
  });
});
