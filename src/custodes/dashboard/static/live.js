// Live updates for dashboard pages: poll the element's data-live URL and swap its content in
// when it changed. No framework, nothing fetched from elsewhere (the page's CSP forbids it).
"use strict";
(function () {
  const PERIOD_MS = 2000;
  const region = document.querySelector("[data-live]");
  const status = document.getElementById("live-status");
  if (!region) return;
  let last = region.innerHTML;
  async function poll() {
    if (document.hidden) return;
    let response;
    try {
      response = await fetch(region.dataset.live, { credentials: "same-origin", cache: "no-store" });
    } catch (err) {
      if (status) status.textContent = "Cannot reach the server; retrying.";
      return;
    }
    if (response.status === 401) { window.location.assign("/dashboard/sign-in"); return; }
    if (!response.ok) { if (status) status.textContent = `The server answered ${response.status}; retrying.`; return; }
    const html = await response.text();
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (html !== last) {
      region.innerHTML = html;
      last = html;
      // Announced politely (role=status): what changed, in one line.
      const summary = region.querySelector("[data-summary]");
      if (status) status.textContent = `Updated ${now}: ${summary ? summary.textContent : "changed"}.`;
    }
    region.dataset.polledAt = now;
  }
  setInterval(poll, PERIOD_MS);
})();
