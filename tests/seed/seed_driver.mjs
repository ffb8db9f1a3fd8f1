// Runs the verbatim seed store, checkout_session_store.ts, against a DynamoDB endpoint.
//
//   node seed_driver.mjs '{"op": "create", "table": "sessions_x", "currency": "EUR"}'
//   echo '{"op": "get", "table": "sessions_x", "id": "..."}' | node seed_driver.mjs
//
// It transpiles the seed with typescript.transpileModule (type-only imports vanish),
// writes the `./client.js` the seed imports next to it, imports the seed's own
// DynamoSessionStore class and runs one operation on it:
//
//   {"op": "create", "table": T, "currency"?: C}          -> store.create(C)
//   {"op": "get", "table": T, "id": ID}                   -> store.get(ID)   (null when absent)
//   {"op": "update", "table": T, "id": ID, "updates": U}  -> store.update(ID, U)
//   {"op": "transition", "table": T, "id": ID, "target": S} -> store.transition(ID, S)
//   {"op": "status", "table": T, "id": ID}                -> store.getStatus(ID)
//
// Any operation may carry "clock": an ISO instant the seed's clock (Date) reads throughout
// that operation, as on a host whose clock lags or leads the pipeline's.
//
// A JSON array of operations runs them in order in this one process and prints an array.
// Output on stdout is the JSON result. An error the seed throws prints {"error": message,
// "name": error.name} and exits 1 (the whole run stops there); a broken harness (bad input,
// missing packages, a seed that no longer transpiles) exits 2 with the reason on stderr.
//
// The endpoint is CHECKOUT_DYNAMODB_ENDPOINT_URL, the one the Python pipeline uses. The
// seed's real client.js is not part of the copy; this one uses the document client's
// defaults (no marshallOptions), which is what defines the seed's item layout.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SEED = join(HERE, 'checkout_session_store.ts');
// Under tests/seed/ so that `@aws-sdk/*` resolves from tests/seed/node_modules.
const BUILD_ROOT = join(HERE, '.build');

const CLIENT_JS = `// Written by seed_driver.mjs: the seed's ./client.js, pointed at the test endpoint.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

let docClient;

export function getDocClient() {
  if (!docClient) {
    docClient = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: process.env.CHECKOUT_DYNAMODB_ENDPOINT_URL,
        region: 'us-east-1',
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      }),
    );
  }
  return docClient;
}
`;

class HarnessError extends Error {}

async function loadTypeScript() {
  try {
    return (await import('typescript')).default;
  } catch (error) {
    throw new HarnessError(
      `cannot load typescript from ${HERE}/node_modules (${error.message}); run \`make seed-harness\``,
    );
  }
}

function transpile(ts, source) {
  const output = ts.transpileModule(source, {
    fileName: 'checkout_session_store.ts',
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: false,
    },
  });
  const errors = (output.diagnostics ?? []).filter(
    (d) => d.category === ts.DiagnosticCategory.Error,
  );
  if (errors.length) {
    const text = errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    throw new HarnessError(`the seed does not transpile: ${text.join('; ')}`);
  }
  return output.outputText;
}

async function loadSeedStore(buildDir) {
  if (!process.env.CHECKOUT_DYNAMODB_ENDPOINT_URL) {
    throw new HarnessError('CHECKOUT_DYNAMODB_ENDPOINT_URL is not set');
  }
  const ts = await loadTypeScript();
  writeFileSync(join(buildDir, 'checkout_session_store.js'), transpile(ts, readFileSync(SEED, 'utf8')));
  writeFileSync(join(buildDir, 'client.js'), CLIENT_JS);
  try {
    const module = await import(pathToFileURL(join(buildDir, 'checkout_session_store.js')).href);
    return module.DynamoSessionStore;
  } catch (error) {
    throw new HarnessError(
      `cannot import the transpiled seed (${error.message}); run \`make seed-harness\``,
    );
  }
}

function needs(op, field) {
  if (op[field] === undefined) throw new HarnessError(`operation ${op.op} needs "${field}"`);
  return op[field];
}

// Date, frozen at `instant` until the returned function restores the real one.
function freezeClock(instant) {
  const RealDate = globalThis.Date;
  const frozen = RealDate.parse(instant);
  if (Number.isNaN(frozen)) throw new HarnessError(`clock is not a date: ${instant}`);
  class FrozenDate extends RealDate {
    constructor(...args) {
      super(...(args.length ? args : [frozen]));
    }

    static now() {
      return frozen;
    }
  }
  globalThis.Date = FrozenDate;
  return () => {
    globalThis.Date = RealDate;
  };
}

async function runOne(Store, op) {
  if (op.clock === undefined) return runOp(Store, op);
  const restore = freezeClock(op.clock);
  try {
    return await runOp(Store, op);
  } finally {
    restore();
  }
}

async function runOp(Store, op) {
  const store = new Store(needs(op, 'table'));
  switch (op.op) {
    case 'create':
      return op.currency === undefined ? store.create() : store.create(op.currency);
    case 'get':
      return (await store.get(needs(op, 'id'))) ?? null;
    case 'update':
      return store.update(needs(op, 'id'), needs(op, 'updates'));
    case 'transition':
      return store.transition(needs(op, 'id'), needs(op, 'target'));
    case 'status':
      return store.getStatus(needs(op, 'id'));
    default:
      throw new HarnessError(`unknown operation: ${JSON.stringify(op.op)}`);
  }
}

function readInput() {
  const text = process.argv[2] ?? readFileSync(0, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HarnessError(`input is not JSON: ${error.message}`);
  }
}

async function main() {
  const input = readInput();
  const ops = Array.isArray(input) ? input : [input];
  mkdirSync(BUILD_ROOT, { recursive: true });
  const buildDir = mkdtempSync(join(BUILD_ROOT, 'run-'));
  try {
    const Store = await loadSeedStore(buildDir);
    const results = [];
    for (const op of ops) {
      try {
        results.push(await runOne(Store, op));
      } catch (error) {
        if (error instanceof HarnessError) throw error;
        process.stdout.write(JSON.stringify({ error: error.message, name: error.name }));
        return 1;
      }
    }
    process.stdout.write(JSON.stringify(Array.isArray(input) ? results : results[0]));
    return 0;
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`seed_driver: ${error instanceof HarnessError ? error.message : error.stack}\n`);
    process.exitCode = 2;
  },
);
