// The page: token, then every panel from the real endpoints, then live updates.

import { createApi } from './api.js';
import { fill, h } from './dom.js';
import { integer, weekRange } from './format.js';
import { mountGames } from './games/index.js';
import { connectLive } from './live.js';
import { renderDraw } from './lottery/draw.js';
import { renderHistory } from './lottery/history.js';
import { renderLeaderboard } from './lottery/leaderboard.js';
import { mountVerify } from './lottery/verify_panel.js';
import { apiBase, forgetToken, saveToken, takeToken } from './session.js';
import { renderWeek } from './week.js';

const $ = (id) => document.getElementById(id);

function askForToken(message) {
  $('content').hidden = true;
  $('sign-out').hidden = true;
  $('token-panel').hidden = false;
  $('token-error').hidden = !message;
  $('token-error').textContent = message ?? '';
  $('token-input').focus();
}

// Runs the panels' loads side by side; a failed panel shows its error where it
// is, the first failure is returned.
async function settle(loads) {
  const results = await Promise.allSettled(loads.map(([load, where]) => load().catch((error) => {
    if (where) fill(where, h('span', { class: 'error' }, error.message));
    throw error;
  })));
  return results.find((r) => r.status === 'rejected')?.reason ?? null;
}

function feed(kind, ...text) {
  const now = new Date().toISOString();
  const item = h('li', { dataset: { event: kind } }, h('time', { datetime: now }, `${now.slice(11, 19)} UTC`), ' ', ...text);
  $('live-feed').prepend(item);
}

const base = apiBase();

async function start(token) {
  const api = createApi(base, token);
  $('token-panel').hidden = true;
  $('content').hidden = false;
  $('sign-out').hidden = false;
  document.querySelector('a[href="../openapi.json"]')?.setAttribute('href', new URL('openapi.json', api.base));

  const games = mountGames($('games'), api);
  const verify = mountVerify($('verify'), api);
  const drawBody = $('draw').querySelector('.body');
  const lottery = () => [
    [async () => verify.show(await renderDraw(drawBody, api)), drawBody],
    [() => renderLeaderboard($('leaderboard'), api), $('leaderboard').querySelector('.body')],
    [() => renderHistory($('history'), api), $('history').querySelector('.body')],
  ];
  const everything = () => [[() => renderWeek($('week-summary'), api), $('week-summary')],
    [() => games.refresh(), null], ...lottery()];

  const failure = await settle(everything());
  if (failure?.status === 401) {
    forgetToken(base);
    askForToken(`The API refused this token: ${failure.message}`);
    return;
  }
  if (failure) {
    $('page-error').hidden = false;
    $('page-error').textContent = failure.message;
    if (failure.status === 0) return; // the API is out of reach: nothing live either
  }

  const status = $('live-status');
  connectLive(api, {
    onStatus(state, text) {
      status.dataset.state = state;
      status.textContent = text;
    },
    onDraw(draw) {
      feed('lottery_drawn', h('strong', {}, `Week ${weekRange(draw.weekStart, draw.weekEnd)} drawn`),
        `: ${integer(draw.totalParticipants)} participants, ${integer(draw.totalShares)} shares`);
      settle(lottery());
    },
    onNotification(note) {
      feed('notification', h('strong', {}, note.title), note.body ? `: ${note.body}` : '');
    },
    onResync() {
      feed('resync', 'Reconnected: everything refreshed');
      settle(everything());
    },
  });
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  saveToken(base, $('token-input').value);
  window.location.reload();
});
$('sign-out').addEventListener('click', () => {
  forgetToken(base);
  window.location.reload();
});

// A new #token= or #api= typed into the address bar: start over with it.
window.addEventListener('hashchange', () => window.location.reload());

const token = takeToken(base);
if (token) start(token);
else askForToken(null);
