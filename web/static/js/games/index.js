// The four games: each card fetches /api/games/weekly-data/{game_type}, lets its
// game module draw the `game` view, and records a play (POST /api/games/play)
// when the player presses the game's button.

import { errorText, fill, h } from '../dom.js';
import * as hammer from './hammer.js';
import * as horseRace from './horse_race.js';
import * as slots from './slots.js';
import * as scratchCard from './scratch_card.js';

export const GAMES = [hammer, horseRace, slots, scratchCard];

function card(game, api) {
  const body = h('div', { class: 'body' }, h('p', { class: 'muted' }, 'Loading…'));
  const button = h('button', { type: 'button', disabled: true }, game.playLabel);
  const status = h('p', { class: 'play-status muted', role: 'status' });
  const root = h('article', { class: 'card game', dataset: { game: game.type }, 'aria-labelledby': `${game.type}-title` },
    h('h3', { id: `${game.type}-title` }, game.title), body, h('div', { class: 'play' }, button, status));
  let view = null;
  let weekStart = null;

  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const resultData = await view.play();
      const session = await api.post('/api/games/play', { gameType: game.type, resultData, weekStart });
      status.textContent = session.playCount === 1 ? 'Played once this week' : `Played ${session.playCount} times this week`;
      status.dataset.playCount = String(session.playCount);
    } catch (error) {
      status.textContent = `Not recorded: ${errorText(error)}`;
    } finally {
      if (view.once) button.textContent = game.doneLabel;
      button.disabled = Boolean(view.once);
    }
  });

  return {
    root,
    async load() {
      try {
        const data = await api.get(`/api/games/weekly-data/${game.type}`);
        weekStart = data.weekStart;
        view = game.render(body, data);
        button.textContent = game.playLabel;
        button.disabled = false;
      } catch (error) {
        fill(body, h('p', { class: 'error' }, errorText(error)));
        throw error;
      }
    },
  };
}

export function mountGames(root, api) {
  const cards = GAMES.map((game) => card(game, api));
  fill(root, cards.map((c) => c.root));
  return { refresh: () => Promise.all(cards.map((c) => c.load())) };
}
