// Scratch Card: tier, rank, percentile and XP (game.*), hidden under the foil
// until the player scratches it.

import { fact, fill, h } from '../dom.js';
import { difficulty, integer, percent } from '../format.js';

export const type = 'scratch_card';
export const title = 'Scratch Card';
export const playLabel = 'Scratch to reveal';
export const doneLabel = 'Revealed';

export function render(body, data) {
  const { tier, weeklyRank, percentile, xp, bestDifficulty } = data.game;
  const prize = h('dl', { class: 'facts prize', hidden: true },
    fact('Tier', tier, 'tier', tier),
    fact('Rank', weeklyRank ? `#${integer(weeklyRank)}` : 'none', 'weeklyRank', weeklyRank),
    fact('Percentile', percent(percentile), 'percentile', percentile),
    fact('XP', integer(xp), 'xp', xp),
    fact('Best share', difficulty(bestDifficulty), 'bestDifficulty', bestDifficulty));
  const foil = h('div', { class: 'foil', 'aria-hidden': 'true' }, '?');

  fill(body, h('div', { class: 'scratch' }, foil, prize));

  return {
    once: true,
    async play() {
      foil.remove();
      prize.hidden = false;
      return { revealed: true, tier };
    },
  };
}
