// Runs the seed's own pure checkout rules, cut out of the TypeScript store's text.
//
//   node extract.mjs checkout_session_store.ts < cases.json > results.json
//   node extract.mjs checkout_session_store.ts --print-source
//
// It extracts determineStatus, buildMessages, recalculateTotals, the private
// getAllowedTransitions method and the allowed-check of `transition` (with its error
// text), strips the few TypeScript annotations they carry and evaluates the result.
// Anything it cannot find exactly once is an error: a changed seed must break the
// differential test, never make it pass vacuously.
//
// Input:  {"sessions": [session, ...], "statuses": [status, ...], "transitions": [[from, to], ...]}
// Output: {"extracted": [...], "totals": [...], "messages": [...], "status": [...],
//          "allowed": {status: [...]}, "transitions": [error text or null, ...]}

import { readFileSync } from 'node:fs';

const FUNCTIONS = ['determineStatus', 'buildMessages', 'recalculateTotals'];

// The annotations the extracted code uses; anything else is left in and fails to compile.
const TYPE_ANNOTATION =
  /:\s*(?:CheckoutSession|CheckoutStatus|CheckoutTotals|CheckoutMessage|LineItem|string)(?:\[\])?(?=\s*[,)={;])/g;

function fail(message) {
  throw new Error(`seed extraction failed: ${message}`);
}

function indexOfOnce(text, needle, what) {
  const first = text.indexOf(needle);
  if (first === -1) fail(`${what} not found (looked for ${JSON.stringify(needle)})`);
  if (text.indexOf(needle, first + 1) !== -1) fail(`${what} found more than once`);
  return first;
}

// Index just past the `}` matching the `{` at `open`, skipping strings and comments.
function matchBrace(text, open) {
  if (text[open] !== '{') fail(`expected "{" at offset ${open}`);
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      i = skipString(text, i);
    } else if (c === '/' && text[i + 1] === '/') {
      i = text.indexOf('\n', i);
      if (i === -1) break;
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i) + 1;
      if (i === 0) break;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return fail(`unbalanced braces from offset ${open}`);
}

// Index of the closing quote of the string starting at `start`.
function skipString(text, start) {
  const quote = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') {
      i++;
    } else if (quote === '`' && text[i] === '$' && text[i + 1] === '{') {
      i = matchBrace(text, i + 1) - 1;
    } else if (text[i] === quote) {
      return i;
    }
  }
  return fail(`unterminated string at offset ${start}`);
}

// The declaration starting at `header` through the end of its body.
function block(text, header, what) {
  const start = indexOfOnce(text, header, what);
  const open = text.indexOf('{', text.indexOf(')', start));
  return text.slice(start, matchBrace(text, open));
}

function stripTypes(code) {
  return code.replace(TYPE_ANNOTATION, '');
}

// transition(): from `const allowed = this.getAllowedTransitions(...)` through the
// `if (...) { throw new Error(`Invalid transition: ...`) }` that guards it.
function transitionCheck(seed) {
  const method = block(seed, 'async transition(', 'the transition method');
  const start = indexOfOnce(method, 'const allowed = this.getAllowedTransitions(', 'allowed lookup');
  const guard = method.indexOf('if (', start);
  if (guard === -1) fail('no guard after the allowed lookup in transition()');
  const end = matchBrace(method, method.indexOf('{', guard));
  const snippet = method.slice(start, end);
  if (!/throw new Error\(\s*`Invalid transition: /.test(snippet)) {
    fail('the guard in transition() no longer throws the "Invalid transition" error');
  }
  const body = stripTypes(snippet).replaceAll('this.getAllowedTransitions', 'getAllowedTransitions');
  return `function checkTransition(current, target) {\n${body}\nreturn null;\n}`;
}

function extractSource(seed) {
  const parts = FUNCTIONS.map((name) => stripTypes(block(seed, `function ${name}(`, name)));
  const allowed = block(seed, 'private getAllowedTransitions(', 'getAllowedTransitions');
  if (!allowed.includes('switch (current)')) fail('getAllowedTransitions has no switch');
  parts.push(stripTypes(allowed).replace(/^private\s+/, 'function '));
  parts.push(transitionCheck(seed));
  return parts.join('\n\n');
}

function loadSeed(path) {
  const source = extractSource(readFileSync(path, 'utf8'));
  const names = [...FUNCTIONS, 'getAllowedTransitions', 'checkTransition'];
  // A leftover annotation is a SyntaxError here, not a silently different program.
  const seed = new Function(`'use strict';\n${source}\nreturn { ${names.join(', ')} };`)();
  for (const name of names) {
    if (typeof seed[name] !== 'function') fail(`${name} did not evaluate to a function`);
  }
  return { seed, source, names };
}

function errorText(check) {
  try {
    check();
    return null;
  } catch (error) {
    return error.message;
  }
}

function run({ seed, names }, cases) {
  if (!cases.sessions?.length || !cases.statuses?.length || !cases.transitions?.length) {
    fail('no cases given on stdin');
  }
  const statuses = cases.statuses;
  return {
    extracted: names,
    totals: cases.sessions.map((s) => seed.recalculateTotals(s.line_items, s.currency)),
    messages: cases.sessions.map((s) => seed.buildMessages(s)),
    status: cases.sessions.map((s) => seed.determineStatus(s)),
    allowed: Object.fromEntries(statuses.map((s) => [s, seed.getAllowedTransitions(s)])),
    transitions: cases.transitions.map(([from, to]) =>
      errorText(() => seed.checkTransition(from, to)),
    ),
  };
}

function main([path, flag]) {
  if (!path) fail('usage: node extract.mjs SEED.ts [--print-source] < cases.json');
  const loaded = loadSeed(path);
  if (flag === '--print-source') {
    process.stdout.write(`${loaded.source}\n`);
    return;
  }
  const cases = JSON.parse(readFileSync(0, 'utf8'));
  process.stdout.write(JSON.stringify(run(loaded, cases)));
}

main(process.argv.slice(2));
