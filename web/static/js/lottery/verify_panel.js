// The "Verify this draw" card: runs verify.js on the draw shown and says match or mismatch.

import { errorText, fill, h } from '../dom.js';
import { integer } from '../format.js';
import { verifyDraw } from '../verify.js';

function check(ok, text) {
  return h('li', { class: ok ? 'pass' : 'fail' }, h('span', { class: 'mark', 'aria-hidden': 'true' }, ok ? '✓' : '✗'),
    ' ', text);
}

function list(ranks) {
  return ranks.slice(0, 10).join(', ') + (ranks.length > 10 ? ', …' : '');
}

export function mountVerify(card, api) {
  const button = card.querySelector('#verify-button');
  const body = card.querySelector('.body');
  let weekStart = null;
  let myResult = null;

  button.addEventListener('click', async () => {
    if (!window.isSecureContext || !window.crypto?.subtle) {
      fill(body, h('p', { class: 'error' }, 'The browser computes SHA-256 only on https:// or localhost pages.'));
      return;
    }
    button.disabled = true;
    const progress = h('p', { class: 'muted' }, 'Fetching the ranking…');
    fill(body, progress);
    try {
      const report = await verifyDraw(api, weekStart, (done, total) => {
        progress.textContent = `Fetched ${integer(done)} of ${integer(total)} lines…`;
      }, myResult);
      const own = report.ownLine;
      fill(body,
        h('p', { class: `verdict ${report.ok ? 'pass' : 'fail'}`, dataset: { verdict: report.ok ? 'match' : 'mismatch' } },
          report.ok ? 'Match: this draw is exactly what its published ranking says.' : 'Mismatch: see below.'),
        h('ul', { class: 'checks' },
          check(report.digestMatches, [`SHA-256 computed here `, h('code', { class: 'hash' }, report.digest),
            report.digestMatches ? ' equals the published digest' : [' differs from the published ', h('code', { class: 'hash' }, report.resultsDigest)]]),
          check(report.countMatches, `${integer(report.lineCount)} lines for ${integer(report.totalParticipants)} participants`),
          check(report.unproven.length === 0, report.unproven.length === 0
            ? `${integer(report.proven)} best difficulties proven by their hashes`
              + (report.withoutHash ? ` (${integer(report.withoutHash)} shares without a hash to check)` : '')
            : `claimed more than their hash proves: rank ${list(report.unproven)}`),
          check(report.outOfOrder.length === 0, report.outOfOrder.length === 0
            ? 'ranked by difficulty, high to low, then earliest first'
            : `out of order at rank ${list(report.outOfOrder)}`),
          own ? check(own.ok, own.ok
            ? `your line, rank ${integer(own.rank)}, names you${report.rankingFormat === 2 ? ' by your pseudonym' : ''}`
            : `your line, rank ${integer(own.rank)}, does not name you`) : null));
    } catch (error) {
      fill(body, h('p', { class: 'error' }, `Could not verify: ${errorText(error)}`));
    } finally {
      button.disabled = false;
    }
  });

  return {
    // The draw to verify (null: none yet), set whenever the draw card is refreshed.
    show(draw) {
      const changed = draw?.weekStart !== weekStart;
      weekStart = draw?.weekStart ?? null;
      myResult = draw?.myResult ?? null;
      button.disabled = weekStart === null;
      button.textContent = weekStart ? `Verify the draw of ${weekStart.slice(0, 10)}` : 'Verify this draw';
      if (changed) fill(body);
    },
  };
}
