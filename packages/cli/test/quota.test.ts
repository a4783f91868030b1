// The default store quota (issue 12, defect 4: with none, sustained writes grew every master
// until it ran out of memory): the least of etcd's 2 GiB, a fifth of the disk, a sixteenth of
// the machine's memory and a quarter of the heap limit, never below 1 MiB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultQuota } from '../src/cluster-file.ts';

const GiB = 1024 ** 3;

test('the default quota is bounded by disk, memory and heap', () => {
  assert.equal(defaultQuota(1000 * GiB, 64 * GiB, 16 * GiB), 2 * GiB, "etcd's default when everything is plentiful");
  assert.equal(defaultQuota(5 * GiB, 64 * GiB, 16 * GiB), GiB, 'a fifth of a small disk');
  assert.equal(defaultQuota(1000 * GiB, 8 * GiB, 16 * GiB), GiB / 2, 'a sixteenth of a laptop that runs three masters');
  assert.equal(defaultQuota(1000 * GiB, 64 * GiB, 2 * GiB), GiB / 2, 'a quarter of the heap a master may use');
  assert.equal(defaultQuota(1024, 1024, 1024), 1024 * 1024, 'never below 1 MiB');
  // On this machine, with its own memory and heap: well below what the masters can hold.
  assert.ok(defaultQuota(1000 * GiB) <= 2 * GiB);
});
