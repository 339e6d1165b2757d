// The caller's past weeks: GET /api/lottery/history?limit=10 ->
//   {weeks: [{weekStart, weekEnd, final, rank, participants, percentile, bestDifficulty, bestHash,
//             totalShares, xpAwarded, tier, gamePlayed}]}; a week not drawn yet (final false) first.
// Hidden while this server does not offer it.

import { fill, h } from '../dom.js';
import { day, difficulty, integer } from '../format.js';

const GAME_NAMES = { hammer: 'Hammer', horse_race: 'Horse Race', slots: 'Slots', scratch_card: 'Scratch Card' };

export async function renderHistory(card, api) {
  const history = await api.optional('/api/lottery/history?limit=10');
  card.hidden = history === null;
  if (history === null) return null;
  const body = card.querySelector('.body');
  if (history.weeks.length === 0) {
    fill(body, h('p', { class: 'muted' }, 'No drawn week with your shares yet.'));
    return history;
  }
  fill(body, h('table', { class: 'ranking' },
    h('thead', {}, h('tr', {}, ['Week', 'Rank', 'Best share', 'XP', 'Tier', 'Played']
      .map((label) => h('th', { scope: 'col' }, label)))),
    h('tbody', {}, history.weeks.map((week) => h('tr', { dataset: { week: week.weekStart } },
      h('td', {}, day(week.weekStart), week.final === false ? ' (live)' : ''),
      h('td', {}, `${integer(week.rank)} / ${integer(week.participants)}`),
      h('td', {}, difficulty(week.bestDifficulty)),
      h('td', {}, integer(week.xpAwarded)),
      h('td', {}, week.tier),
      h('td', {}, GAME_NAMES[week.gamePlayed] ?? '–'))))));
  return history;
}
