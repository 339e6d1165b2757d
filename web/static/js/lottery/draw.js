// The latest draw: GET /api/lottery/current (404 before the first draw), its top
// 10, the caller's result and a countdown to nextDrawAt.

import { ApiError } from '../api.js';
import { fact, fill, h } from '../dom.js';
import { countdown, difficulty, integer, ordinal, utc, weekRange } from '../format.js';

let ticking = null;

function startCountdown(element, nextDrawAt) {
  clearInterval(ticking);
  const due = Date.parse(nextDrawAt);
  const tick = () => {
    const left = due - Date.now();
    element.textContent = left > 0 ? countdown(left) : 'any moment now';
  };
  tick();
  ticking = setInterval(tick, 1000);
}

function myResultLine(draw) {
  const me = draw.myResult;
  if (!me) return h('p', { class: 'me-result', dataset: { field: 'myRank', value: '0' } }, 'You had no shares that week.');
  return h('p', { class: 'me-result', dataset: { field: 'myRank', value: String(me.rank) } },
    'You: ', h('strong', {}, `${ordinal(me.rank)} of ${integer(draw.totalParticipants)}`),
    `, +${integer(me.xpAwarded)} XP, best share ${difficulty(me.bestDifficulty)}`);
}

function topTen(draw) {
  const myRank = draw.myResult?.rank;
  return h('table', { class: 'ranking' },
    h('caption', {}, 'Top 10'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Rank'), h('th', { scope: 'col' }, 'Miner'),
      h('th', { scope: 'col', class: 'num' }, 'Best share'), h('th', { scope: 'col', class: 'num' }, 'XP'))),
    h('tbody', {}, draw.top10.map((row) => h('tr', { class: row.rank === myRank ? 'me' : null, dataset: { rank: String(row.rank) } },
      h('td', {}, String(row.rank)),
      h('td', { class: 'name' }, row.displayName ?? row.userId, row.rank === myRank ? ' (you)' : ''),
      h('td', { class: 'num', title: String(row.bestDifficulty) }, difficulty(row.bestDifficulty)),
      h('td', { class: 'num' }, integer(row.xpAwarded))))));
}

export async function renderDraw(root, api) {
  let draw;
  try {
    draw = await api.get('/api/lottery/current');
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    clearInterval(ticking);
    fill(root, h('p', { class: 'muted' }, 'No week has been drawn yet.'));
    return null;
  }
  const clock = h('time', { datetime: draw.nextDrawAt });
  fill(root,
    h('p', { class: 'draw-week', dataset: { field: 'weekStart', value: draw.weekStart } },
      'Week ', h('strong', {}, weekRange(draw.weekStart, draw.weekEnd)), `, drawn ${utc(draw.drawnAt)}`),
    h('dl', { class: 'facts inline' },
      fact('Participants', integer(draw.totalParticipants), 'totalParticipants', draw.totalParticipants),
      fact('Shares', integer(draw.totalShares), 'totalShares', draw.totalShares),
      draw.forgedShares ? fact('Forged shares refused', integer(draw.forgedShares), 'forgedShares', draw.forgedShares) : null),
    myResultLine(draw),
    topTen(draw),
    h('p', { class: 'countdown' }, 'Next draw in ', clock, ` (${utc(draw.nextDrawAt)})`));
  startCountdown(clock, draw.nextDrawAt);
  return draw;
}
