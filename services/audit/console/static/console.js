// The console's only script (served from the package). Everything works without it; it adds
// live updates (server-sent events from console/live: each newly recorded event) and asks
// before replaying or purging.
"use strict";

const REFRESH_MS = 1000; // at most one refresh a second, however many events arrive

function confirmActions() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

async function refresh() {
  const response = await fetch(location.href, { headers: { Accept: "text/html" } });
  if (!response.ok || response.redirected) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const part of document.querySelectorAll("[data-live], #totals")) {
    const selector = part.id ? `#${part.id}` : `[data-live="${part.dataset.live}"]`;
    const next = fresh.querySelector(selector);
    if (next) part.replaceWith(document.adoptNode(next));
  }
}

function listen() {
  if (!document.querySelector("[data-live]")) return;
  const source = new EventSource(document.body.dataset.root + "console/live");
  let pending = null;
  source.addEventListener("recorded", () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      refresh();
    }, REFRESH_MS);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  confirmActions();
  listen();
});
