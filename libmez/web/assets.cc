// The page and its script, served from memory. No inline script or style
// (the CSP forbids both): the page loads /app.js, which does the sign-in
// exchange (the code travels in the URL's fragment, never to a server
// log or a Referer) and lists the sessions. The full UI (session page,
// audit, player) is not built yet (docs/web.md).
#include "libmez/web/api.h"

namespace mez::web {

const std::string& IndexHtml() {
  static const std::string kHtml = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mezite</title>
<script src="/app.js" defer></script>
</head>
<body>
<header><h1>Mezite</h1> <span id="who"></span>
<button id="logout" hidden>Sign out</button></header>
<p id="status">Loading...</p>
<table id="sessions" hidden>
<thead><tr><th>Started</th><th>User</th><th>Node</th><th>Login</th>
<th>Kind</th><th>Status</th><th>Bytes</th><th>Id</th></tr></thead>
<tbody></tbody>
</table>
<button id="more" hidden>More</button>
</body>
</html>
)";
  return kHtml;
}

const std::string& AppJs() {
  static const std::string kJs = R"JS('use strict';
let csrf = '';
let cursor = '';

function $(id) { return document.getElementById(id); }

function say(text) { $('status').textContent = text; }

async function api(method, path, body) {
  const init = {method, credentials: 'same-origin', headers: {}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET') init.headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, init);
  const data = await r.json();
  if (!r.ok) throw new Error(data.message || r.statusText);
  return data;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = String(text);
  row.appendChild(td);
}

async function loadSessions() {
  const q = new URLSearchParams(location.search);
  q.set('limit', '50');
  if (cursor) q.set('cursor', cursor);
  const data = await api('GET', '/api/sessions?' + q.toString());
  const body = $('sessions').querySelector('tbody');
  for (const s of data.sessions) {
    const tr = document.createElement('tr');
    for (const v of [s.started, s.user, s.node, s.login, s.kind, s.status,
                     s.bytes, s.id]) {
      cell(tr, v);
    }
    body.appendChild(tr);
  }
  cursor = data.next_cursor;
  $('more').hidden = !cursor;
  $('sessions').hidden = false;
  say(body.children.length ? '' : 'No sessions.');
}

async function main() {
  try {
    if (location.pathname === '/login' && location.hash.length > 1) {
      const code = location.hash.substring(1);
      history.replaceState(null, '', '/sessions');
      await api('POST', '/api/login', {code});
    }
    const me = await api('GET', '/api/me');
    csrf = me.csrf;
    $('who').textContent = me.user + ' (' + me.role + ')';
    $('logout').hidden = false;
    await loadSessions();
  } catch (e) {
    say(e.message);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('logout').addEventListener('click', async () => {
    try { await api('POST', '/api/logout'); } catch (e) {}
    location.assign('/');
  });
  $('more').addEventListener('click', () => loadSessions().catch(
      (e) => say(e.message)));
  main();
});
)JS";
  return kJs;
}

}  // namespace mez::web
