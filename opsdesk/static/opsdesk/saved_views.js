/* Saved views in the sidebar (docs/product.md#saved-views): after the page shows, the
 * person's views of the triage queue and of the exceptions inbox, each with its count,
 * are fetched (the sidebar/ endpoint of the "Saved views" entry) and put under the
 * queue's and the inbox's entries. Counting never holds the page up, and a page whose
 * sidebar has no "Saved views" entry (no permission) asks for nothing. */

document.addEventListener("DOMContentLoaded", () => {
  const sidebar = document.getElementById("nav-sidebar-apps");
  const manage = sidebar?.querySelector('a[href$="/opsdesk/savedview/"]');
  if (!manage) return;
  const url = new URL("sidebar/", manage.href);
  url.searchParams.set("here", window.location.pathname + window.location.search);
  fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => (response.ok && !response.redirected ? response.text() : ""))
    .then((html) => {
      if (!html) return;
      // Escaped by the server's template; parsed inert (no script runs in a DOMParser
      // document), then moved into the sidebar.
      const fragment = new DOMParser().parseFromString(html, "text/html");
      fragment.querySelectorAll("ol[data-od-under]").forEach((list) => {
        const entry = sidebar.querySelector(`a[href="${CSS.escape(list.dataset.odUnder)}"]`);
        const item = entry?.closest("li");
        if (item) item.after(...Array.from(list.children));
      });
    })
    .catch(() => {}); // the sidebar without views: the pages still list them
});
