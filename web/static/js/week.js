// The header line: the caller's open week from GET /api/games/weekly-data.

import { fill, h } from './dom.js';
import { difficulty, integer, weekRange } from './format.js';

export async function renderWeek(root, api) {
  const week = await api.get('/api/games/weekly-data');
  const value = (field, raw, text) => h('strong', { dataset: { field, value: String(raw) } }, text);
  fill(root,
    'Week ', value('weekStart', week.weekStart, weekRange(week.weekStart, week.weekEnd)), ' · best share ',
    value('bestDifficulty', week.bestDifficulty, difficulty(week.bestDifficulty)), ' · ',
    value('totalShares', week.totalShares, integer(week.totalShares)), week.totalShares === 1 ? ' share' : ' shares',
    week.weeklyRank
      ? [' · rank ', value('weeklyRank', week.weeklyRank, `#${integer(week.weeklyRank)}`),
         `, percentile ${week.percentile.toFixed(1)}`]
      : ' · not ranked yet',
    week.blockFound ? [' · ', h('strong', { class: 'block' }, 'block found!')] : null);
  return week;
}
