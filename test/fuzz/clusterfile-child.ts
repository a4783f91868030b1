// Runs parseClusterFile / loadClusterFile on what the campaign sends, in a process of its own
// (IPC), so a hang, a blown heap or a fatal V8 error is seen (and the process replaced)
// instead of taking the campaign down: a master given the same file would meet the same fate.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadClusterFile, parseClusterFile } from '@flotilla/cli';

interface Job {
  readonly id: number;
  readonly mode: 'parse' | 'load';
  readonly text: string;
  readonly files: readonly { readonly name: string; readonly content: string }[];
}

const dir = process.argv[2]!;
// The yaml package warns on stderr about tags it does not know: expected here, and noise.
process.emitWarning = () => undefined;

process.on('message', (job: Job) => {
  const started = performance.now();
  const caseDir = join(dir, `c${job.id % 4}`);
  try {
    let file = join(caseDir, 'cluster.yaml');
    if (job.mode === 'load') {
      rmSync(caseDir, { recursive: true, force: true });
      mkdirSync(caseDir, { recursive: true });
      for (const f of job.files) {
        if (f.content === 'DIR') mkdirSync(join(caseDir, f.name), { recursive: true });
        else writeFileSync(join(caseDir, f.name), f.content);
      }
      writeFileSync(file, job.text);
      loadClusterFile(file);
    } else {
      file = '/fuzz/cluster.yaml';
      parseClusterFile(job.text, file);
    }
    process.send!({ id: job.id, ok: true, ms: performance.now() - started });
  } catch (err) {
    const e = err as Error;
    process.send!({ id: job.id, ok: false, name: e?.name ?? typeof err, ctor: e?.constructor?.name, message: String(e?.message ?? err), stack: String(e?.stack ?? '').split('\n').slice(0, 6).join('\n'), ms: performance.now() - started });
  }
});
process.send!({ ready: true });
// The campaign going away (IPC closed) ends this process too.
process.on('disconnect', () => process.exit(0));
