// The mail view's only script (served from the package). Everything works without it; it
// adds live updates (server-sent events from ./events) and asks before deleting.
"use strict";

const REFRESH_MS = 1000; // at most one refresh a second, however many changes arrive
let waiting = null; // the timer of the last refresh, while it runs
let again = false; // a change came meanwhile: refresh once more when the timer ends

function refreshSoon() {
  if (waiting) {
    again = true;
    return;
  }
  refreshList();
  waiting = setTimeout(() => {
    waiting = null;
    if (again) {
      again = false;
      refreshSoon();
    }
  }, REFRESH_MS);
}

function root() {
  // The list lives at ./, a message at ./view/<id>: the events stream is next to the list.
  return location.pathname.includes("/view/") ? "../" : "./";
}

function confirmDeletes() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

async function refreshList() {
  const response = await fetch(location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["messages", "count"]) {
    const now = document.getElementById(id);
    const next = fresh.getElementById(id);
    if (now && next) now.replaceWith(document.adoptNode(next));
  }
  document.title = fresh.title;
}

function showGone() {
  const panel = document.getElementById("panel");
  if (!panel || document.getElementById("gone")) return;
  const note = document.createElement("p");
  note.id = "gone";
  note.className = "error";
  note.setAttribute("role", "alert");
  note.textContent = "This message has been deleted.";
  panel.before(note);
}

function listen() {
  const onList = !location.pathname.includes("/view/");
  const here = decodeURIComponent(location.pathname.split("/view/")[1] || "");
  const source = new EventSource(root() + "events");
  const onChange = (event) => {
    if (onList) {
      refreshSoon();
      return;
    }
    const id = JSON.parse(event.data).id;
    if (event.type === "cleared" || (event.type === "deleted" && id === here)) showGone();
  };
  for (const kind of ["stored", "read", "deleted", "cleared"]) {
    source.addEventListener(kind, onChange);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  confirmDeletes();
  listen();
});
