// The open week's leaderboard around the caller:
// GET /api/lottery/leaderboard/me?around=5 ->
//   {participants, nextDrawAt, weekStart, rows: [{rank, displayName, bestDifficulty, bestShareAt, isMe}]}.
// Hidden while this server does not offer it.

import { fill, h } from '../dom.js';
import { difficulty, integer, utc } from '../format.js';

export async function renderLeaderboard(card, api) {
  const board = await api.optional('/api/lottery/leaderboard/me?around=5');
  card.hidden = board === null;
  if (board === null) return null;
  fill(card.querySelector('.body'),
    h('p', { class: 'muted' }, `${integer(board.participants)} participants so far`),
    h('table', { class: 'ranking' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Rank'), h('th', { scope: 'col' }, 'Miner'),
        h('th', { scope: 'col', class: 'num' }, 'Best share'), h('th', { scope: 'col' }, 'Reached'))),
      h('tbody', {}, board.rows.map((row) => h('tr', { class: row.isMe ? 'me' : null, dataset: { rank: String(row.rank) } },
        h('td', {}, String(row.rank)),
        h('td', { class: 'name' }, row.displayName, row.isMe ? ' (you)' : ''),
        h('td', { class: 'num' }, difficulty(row.bestDifficulty)),
        h('td', {}, row.bestShareAt ? utc(row.bestShareAt) : '–'))))));
  return board;
}
