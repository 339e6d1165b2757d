// Hammer: how far up the log-scale tower the week's best share rang, toward the
// network difficulty at the top (game.logBest / game.logNetwork / progressRatio).

import { fact, fill, h, reducedMotion, sleep } from '../dom.js';
import { difficulty, percent } from '../format.js';

export const type = 'hammer';
export const title = 'Hammer';
export const playLabel = 'Swing the hammer';

function power(exponent) {
  return h('span', {}, '10', h('sup', {}, exponent.toFixed(2)));
}

export function render(body, data) {
  const { logBest, logNetwork, progressRatio } = data.game;
  const column = h('div', { class: 'hammer-fill', style: { '--ratio': String(progressRatio) } });
  const tower = h('div', {
    class: 'hammer-tower', role: 'meter', 'aria-label': 'Height reached toward the network difficulty',
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': (progressRatio * 100).toFixed(1),
    'aria-valuetext': `${percent(progressRatio * 100)} of the way to the bell`,
  }, h('span', { class: 'bell', 'aria-hidden': 'true' }), column);

  fill(body, h('div', { class: 'hammer' }, tower, h('dl', { class: 'facts' },
    fact('Your best share', [power(logBest), ` (${difficulty(data.bestDifficulty)})`], 'logBest', logBest),
    fact('The bell: network difficulty', [power(logNetwork), ` (${difficulty(data.networkDifficulty)})`],
      'logNetwork', logNetwork),
    fact('Height reached', percent(progressRatio * 100), 'progressRatio', progressRatio),
  )));

  return {
    async play() {
      if (!reducedMotion()) {
        column.classList.add('swinging');
        column.style.setProperty('--ratio', '0');
        column.getBoundingClientRect(); // commit the empty column before it rises again
        column.classList.remove('swinging');
        column.style.setProperty('--ratio', String(progressRatio));
        await sleep(1200);
      }
      return { progressRatio, rangTheBell: progressRatio >= 1 };
    },
  };
}
