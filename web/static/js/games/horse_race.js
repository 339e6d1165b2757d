// Horse Race: one horse per day of the week, each as far down the track as that
// day's best share (log scale against the winner), placed as game.horses says.

import { fill, h, reducedMotion, sleep } from '../dom.js';
import { DAY_NAMES, difficulty, ordinal } from '../format.js';

export const type = 'horse_race';
export const title = 'Horse Race';
export const playLabel = 'Start the race';

function distance(best, leader) {
  return best > 1 && leader > 1 ? Math.log10(best) / Math.log10(leader) : 0;
}

export function render(body, data) {
  const { horses, winner } = data.game;
  const leader = Math.max(...horses.map((horse) => horse.bestDifficulty));
  const runners = [];
  const lanes = horses.map((horse) => {
    const runner = h('span', { class: 'horse', style: { '--distance': String(distance(horse.bestDifficulty, leader)) } },
      ordinal(horse.place));
    runners.push([runner, distance(horse.bestDifficulty, leader)]);
    return h('li', {
      class: horse.day === winner ? 'lane winner' : 'lane',
      dataset: { day: horse.day, place: String(horse.place), difficulty: String(horse.bestDifficulty) },
    },
    h('span', { class: 'day' }, h('abbr', { title: DAY_NAMES[horse.day] }, horse.day)),
    h('span', { class: 'track' }, runner),
    h('span', { class: 'diff' }, difficulty(horse.bestDifficulty)));
  });

  const track = h('ol', { class: 'lanes', 'aria-label': 'Horses by day, with their place' }, lanes);
  fill(body,
    track,
    h('p', { class: 'outcome', dataset: { field: 'winner', value: winner } },
      leader > 0 ? `${DAY_NAMES[winner]} wins` : 'No shares yet: every horse is still at the gate'));

  return {
    async play() {
      if (!reducedMotion()) {
        track.classList.add('at-gate');
        for (const [runner] of runners) runner.style.setProperty('--distance', '0');
        track.getBoundingClientRect(); // back to the gate at once, then off they go
        track.classList.remove('at-gate');
        for (const [runner, d] of runners) runner.style.setProperty('--distance', String(d));
        await sleep(1600);
      }
      return { winner };
    },
  };
}
