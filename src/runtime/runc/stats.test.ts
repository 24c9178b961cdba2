/** The parsers behind `readMachineStats`, on text as this kernel writes it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseBlockIo,
  parseCgroupMounts,
  parseKeyedValues,
  parseNetDev,
  parseNumaStat,
  parsePressure,
  parseRangeList,
  v2MemoryCounters,
} from './stats.js';

describe('cgroup and /proc parsers', () => {
  it('finds each v1 controller and the v2 hierarchy in the mount table, co-mounted ones too', () => {
    const h = parseCgroupMounts(
      [
        'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
        'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0',
        'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
        'cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0',
        'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
        'overlay /x/rootfs overlay rw,lowerdir=/a,upperdir=/b 0 0',
      ].join('\n'),
    );
    assert.deepEqual(h, {
      v1: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' },
      unified: '/sys/fs/cgroup/unified',
    });
  });

  it('reads PSI lines, and null when the file is absent', () => {
    assert.deepEqual(parsePressure('some avg10=1.50 avg60=0.25 avg300=0.00 total=8710\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=6640\n'), {
      some: { avg10: 1.5, avg60: 0.25, avg300: 0, totalUs: 8710 },
      full: { avg10: 0, avg60: 0, avg300: 0, totalUs: 6640 },
    });
    assert.equal(parsePressure(null), null);
  });

  it('keeps the Read and Write entries of a blkio file', () => {
    assert.deepEqual(parseBlockIo('7:3 Read 4096\n7:3 Write 114688\n7:3 Sync 0\n7:3 Async 118784\n7:3 Discard 0\n7:3 Total 118784\nTotal 118784\n'), [
      { major: 7, minor: 3, op: 'Read', value: 4096 },
      { major: 7, minor: 3, op: 'Write', value: 114688 },
    ]);
    assert.deepEqual(parseBlockIo('Total 0\n'), []);
  });

  it('reads numa_stat pages per node, the hierarchical ones apart', () => {
    const n = parseNumaStat('total=1295 N0=1200 N1=95\nfile=0 N0=0 N1=0\nanon=1295 N0=1200 N1=95\nunevictable=0 N0=0 N1=0\nhierarchical_total=1300 N0=1205 N1=95\n');
    assert.deepEqual(n.total, { total: 1295, nodes: { 0: 1200, 1: 95 } });
    assert.deepEqual(n.anon, { total: 1295, nodes: { 0: 1200, 1: 95 } });
    assert.deepEqual(n.hierarchical.total, { total: 1300, nodes: { 0: 1205, 1: 95 } });
    assert.deepEqual(n.hierarchical.file, { total: 0, nodes: {} });
  });

  it('reads every interface of /proc/<pid>/net/dev', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:     940      12    0    0    0     0          0         0      940      12    0    0    0     0       0          0',
      '  eth0: 440358    1640    1    2    0     0          0         0   688993    1911    3    4    0     0       0          0',
    ].join('\n');
    assert.deepEqual(parseNetDev(text), [
      { name: 'lo', rxBytes: 940, rxPackets: 12, rxErrors: 0, rxDropped: 0, txBytes: 940, txPackets: 12, txErrors: 0, txDropped: 0 },
      { name: 'eth0', rxBytes: 440358, rxPackets: 1640, rxErrors: 1, rxDropped: 2, txBytes: 688993, txPackets: 1911, txErrors: 3, txDropped: 4 },
    ]);
  });

  it('expands CPU lists and reads sentinel limits as 0', () => {
    assert.deepEqual(parseRangeList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseRangeList(''), []);
    const kv = parseKeyedValues('limit 9223372036854771712\nnr_periods 5\n');
    assert.equal(kv.get('limit'), 0);
    assert.equal(kv.get('nr_periods'), 5);
  });

  it('names v1 memory.stat hierarchical counters as cgroup v2 does, dropping the rest', () => {
    const v1 = parseKeyedValues('cache 9\nrss 9\ntotal_cache 5242880\ntotal_rss 61440\ntotal_shmem 5242880\ntotal_mapped_file 4096\ntotal_pgfault 1809\ntotal_pgpgin 2480\n');
    assert.deepEqual(v2MemoryCounters(v1), { file: 5242880, anon: 61440, shmem: 5242880, file_mapped: 4096, pgfault: 1809 });
  });
});
