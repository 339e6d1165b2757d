// Verify a draw from its published ranking alone (the recipe of docs/verifying.md):
//   1. fetch every page of /api/lottery/week/{week}/ranking;
//   2. SHA-256 over the lines in rank order, each followed by "\n", as UTF-8,
//      must equal the draw's resultsDigest;
//   3. each best difficulty must be proven by its hash: ckpool's
//      0xFFFF * 2^208 / hash, within the 0.1% the draw allows for rounding;
//   4. the order must follow the rule: difficulty high to low, then earlier first;
//   5. the caller's own line, at their rank, must name them: on a format-2 draw its
//      pseudonym is SHA-256(salt || user id), the salt in the caller's myResult.
// The formula and the tolerance are restated here on purpose: a verifier checks the
// server against the published rule, not against the server's own code.

export const TRUEDIFFONE = 0xffffn << 208n;
const ROUNDING = 1.001;
const PAGE_SIZE = 1000;

// One published line -> its fields. The only place that knows the line formats:
// a format-1 line (older draws) names the user id, a format-2 line a pseudonym.
export function parseLine(line, format = 1) {
  const [rank, name, bestDifficulty, bestHash, bestShareAt] = JSON.parse(line);
  const who = format === 2 ? { pseudonym: name } : { userId: name };
  return { rank, ...who, bestDifficulty, bestHash, bestShareAt };
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

// The pseudonym of a format-2 line: SHA-256 of the salt's bytes, then the user id in UTF-8.
export async function pseudonym(saltHex, userId) {
  const salt = Uint8Array.from(saltHex.match(/[0-9a-f]{2}/gi) ?? [], (pair) => parseInt(pair, 16));
  const id = new TextEncoder().encode(userId);
  const bytes = new Uint8Array(salt.length + id.length);
  bytes.set(salt);
  bytes.set(id, salt.length);
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

// The difficulty a 64-hex-digit share hash proves; null for no hash (empty or zero).
export function difficultyFromHash(hex) {
  if (!/^[0-9a-f]{64}$/i.test(hex)) return null;
  const hash = BigInt(`0x${hex}`);
  if (hash === 0n) return null;
  // 64 extra bits in the integer quotient keep the fraction of small difficulties.
  return Number((TRUEDIFFONE << 64n) / hash) / 2 ** 64;
}

export async function sha256Hex(text) {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

export async function fetchRanking(api, weekStart, onProgress = () => {}) {
  const week = weekStart.slice(0, 10);
  const lines = [];
  let first = null;
  for (;;) {
    const page = await api.get(`/api/lottery/week/${week}/ranking?limit=${PAGE_SIZE}&offset=${lines.length}`);
    first ??= page;
    if (page.resultsDigest !== first.resultsDigest) throw new Error('the draw changed while its pages were read');
    lines.push(...page.lines);
    onProgress(lines.length, page.totalParticipants);
    if (page.lines.length < PAGE_SIZE) break;
  }
  return { lines, resultsDigest: first.resultsDigest, totalParticipants: first.totalParticipants,
    forgedShares: first.forgedShares, rankingFormat: first.rankingFormat ?? 1 };
}

// The caller's own line (myResult of the draw; null when they had none): at their rank,
// with their difficulty, naming them (format 1) or their pseudonym (format 2).
async function checkOwnLine(entries, format, myResult) {
  if (!myResult) return null;
  const entry = entries[myResult.rank - 1];
  const named = format === 2
    ? entry?.pseudonym === await pseudonym(myResult.pseudonymSalt ?? '', myResult.userId)
    : entry?.userId === myResult.userId;
  return { rank: myResult.rank, ok: named && entry.bestDifficulty === myResult.bestDifficulty };
}

// Every check on a fetched ranking; `ok` is the verdict.
export async function checkRanking({ lines, resultsDigest, totalParticipants, rankingFormat = 1 }, myResult = null) {
  const digest = await sha256Hex(lines.map((line) => `${line}\n`).join(''));
  const entries = lines.map((line) => parseLine(line, rankingFormat));
  const unproven = [];
  const outOfOrder = [];
  let withoutHash = 0;
  entries.forEach((entry, i) => {
    const proven = difficultyFromHash(entry.bestHash);
    if (proven === null) withoutHash += 1;
    else if (entry.bestDifficulty > proven * ROUNDING) unproven.push(entry.rank);
    const before = entries[i - 1];
    const inOrder = entry.rank === i + 1 && (!before || before.bestDifficulty > entry.bestDifficulty
      || (before.bestDifficulty === entry.bestDifficulty && before.bestShareAt <= entry.bestShareAt));
    // A full tie is ordered by user id, which a format-2 line does not show: not checked here.
    if (!inOrder) outOfOrder.push(entry.rank);
  });
  const digestMatches = digest === resultsDigest;
  const countMatches = entries.length === totalParticipants;
  const ownLine = await checkOwnLine(entries, rankingFormat, myResult);
  return {
    ok: digestMatches && countMatches && unproven.length === 0 && outOfOrder.length === 0 && ownLine?.ok !== false,
    digest, resultsDigest, digestMatches, rankingFormat,
    lineCount: entries.length, totalParticipants, countMatches,
    proven: entries.length - withoutHash - unproven.length, withoutHash, unproven, outOfOrder, ownLine,
  };
}

export async function verifyDraw(api, weekStart, onProgress, myResult = null) {
  return checkRanking(await fetchRanking(api, weekStart, onProgress), myResult);
}
