// Slots: the three reels are three hex characters of the week's best share hash
// (game.reels); spinning only animates them back to the same characters.

import { fill, h, reducedMotion, sleep } from '../dom.js';

export const type = 'slots';
export const title = 'Slots';
export const playLabel = 'Spin';

const HEX = '0123456789abcdef';

function outcome(reels) {
  const distinct = new Set(reels).size;
  return distinct === 1 ? 'Three of a kind!' : distinct === 2 ? 'A pair' : 'No match this time';
}

export function render(body, data) {
  const { reels } = data.game;
  const faces = reels.map((value, i) => h('span', { class: 'reel', dataset: { reel: String(i), value } }, value));
  const result = h('p', { class: 'outcome' }, outcome(reels));

  fill(body,
    h('div', { class: 'reels', role: 'group', 'aria-label': `Reels: ${reels.join(' ')}` }, faces),
    result,
    h('p', { class: 'muted small' }, 'From your best hash ', h('code', { class: 'hash' }, data.bestHash || 'none yet')));

  return {
    async play() {
      if (!reducedMotion()) {
        result.textContent = 'Spinning…';
        const timer = setInterval(() => {
          for (const face of faces) {
            if (face.classList.contains('spinning')) face.textContent = HEX[Math.floor(Math.random() * 16)];
          }
        }, 60);
        for (const face of faces) face.classList.add('spinning');
        for (const [i, face] of faces.entries()) {
          await sleep(i === 0 ? 700 : 350);
          face.classList.remove('spinning');
          face.textContent = reels[i];
        }
        clearInterval(timer);
        result.textContent = outcome(reels);
      }
      return { reels };
    },
  };
}
