/**
 * The known name closest to a misspelt one, as Python's `difflib.get_close_matches(word,
 * names, n=1)` picks it, so the TypeScript producer suggests the field the Python one does
 * (`schemas/known_fields.py`): `sesion_id: is not a known field; did you mean session_id?`.
 */

// difflib's default cutoff: a ratio below it is no suggestion.
const CUTOFF = 0.6;
// difflib's autojunk: in a word this long, characters more frequent than 1% are not anchors.
const AUTOJUNK_LENGTH = 200;

/** The name in `names` most like `word` (ratio ≥ 0.6, ties to the greatest name), or undefined. */
export function closest(word: string, names: Iterable<string>): string | undefined {
  let best: { score: number; name: string } | undefined;
  for (const name of names) {
    const score = ratio(name, word);
    if (score < CUTOFF) continue;
    if (!best || score > best.score || (score === best.score && name > best.name)) {
      best = { score, name };
    }
  }
  return best?.name;
}

/** SequenceMatcher(None, a, b).ratio(): twice the matched characters over both lengths. */
export function ratio(a: string, b: string): number {
  const left = Array.from(a);
  const right = Array.from(b);
  const total = left.length + right.length;
  return total === 0 ? 1 : (2 * matched(left, right, positions(right))) / total;
}

/** Where each character of `b` is, without autojunk's popular characters. */
function positions(b: string[]): Map<string, number[]> {
  const where = new Map<string, number[]>();
  b.forEach((char, j) => where.set(char, [...(where.get(char) ?? []), j]));
  if (b.length >= AUTOJUNK_LENGTH) {
    const most = Math.floor(b.length / 100) + 1;
    for (const [char, js] of where) if (js.length > most) where.delete(char);
  }
  return where;
}

/** The characters of difflib's matching blocks: the longest match, then each side of it. */
function matched(a: string[], b: string[], where: Map<string, number[]>): number {
  let total = 0;
  const queue: [number, number, number, number][] = [[0, a.length, 0, b.length]];
  while (queue.length > 0) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const [i, j, size] = longestMatch(a, b, where, alo, ahi, blo, bhi);
    if (size === 0) continue;
    total += size;
    if (alo < i && blo < j) queue.push([alo, i, blo, j]);
    if (i + size < ahi && j + size < bhi) queue.push([i + size, ahi, j + size, bhi]);
  }
  return total;
}

/** SequenceMatcher.find_longest_match: earliest in `a`, then in `b`, among the longest. */
function longestMatch(
  a: string[],
  b: string[],
  where: Map<string, number[]>,
  alo: number,
  ahi: number,
  blo: number,
  bhi: number,
): [number, number, number] {
  let [besti, bestj, bestsize] = [alo, blo, 0];
  let lengths = new Map<number, number>();
  for (let i = alo; i < ahi; i++) {
    const next = new Map<number, number>();
    for (const j of where.get(a[i]!) ?? []) {
      if (j < blo) continue;
      if (j >= bhi) break;
      const k = (lengths.get(j - 1) ?? 0) + 1;
      next.set(j, k);
      if (k > bestsize) [besti, bestj, bestsize] = [i - k + 1, j - k + 1, k];
    }
    lengths = next;
  }
  // Autojunk's popular characters are no anchors, but a match runs on through them.
  while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) {
    [besti, bestj, bestsize] = [besti - 1, bestj - 1, bestsize + 1];
  }
  while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) {
    bestsize++;
  }
  return [besti, bestj, bestsize];
}
