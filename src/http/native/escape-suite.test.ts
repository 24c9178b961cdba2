/**
 * The escape suite (issue 14, docs/security.md): a hostile user drives a machine through
 * the API and tries to get out of it. Every attempt must fail inside the machine, and the
 * host, the server and the other machines (one of the same team, one of another team)
 * must keep working: after each group of attempts the neighbours still answer an exec
 * and the attacker's own machine still runs (or, for the bombs, recovers).
 *
 * Traffic stays on loopback and on the machines' own private addresses; the one host
 * address used is the bridge's gateway, which this server made.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestServer, waitFor } from '../../testing/harness.js';

type Json = Record<string, any>;
interface ExecResult {
  exit_code: number;
  stdout: string;
  stderr: string;
}

/** A ustar archive of the given entries (regular files and symlinks), written here byte by byte. */
function tarOf(entries: Array<{ name: string; body?: string; linkTo?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${(e.linkTo ? 0 : body.length).toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.linkTo ? '2' : '0', 156);
    if (e.linkTo) h.write(e.linkTo, 157, 100, 'utf8');
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h);
    if (!e.linkTo && body.length) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/**
 * The suite runs once per isolation tier, with the attacker and both neighbours of that
 * tier. Where gVisor answers differently from the host's kernel the attempt is still made
 * and the difference is asserted, not skipped (see docs/security.md, Tiers).
 */
for (const isolation of ['container', 'gvisor'] as const) escapeSuite(isolation);

function escapeSuite(isolation: 'container' | 'gvisor'): void {
  const gvisor = isolation === 'gvisor';
  describe(`escape suite (${isolation}): a hostile machine stays inside`, () => {
    let t: TestServer;
    let keyA: string;
    let keyB: string;
    /** The attacker, its team's neighbour, and a machine of another team. */
    let attacker: Json;
    let neighbour: Json;
    let stranger: Json;
    /** A directory on the host that no machine may read or write. */
    let hostDir: string;
    const SECRET = `host secret ${Math.random()}`;

    const exec = async (id: string, script: string, key = keyA): Promise<ExecResult> => {
      const r = await t.request('POST', `/v1/machines/${id}/exec`, { key, body: { cmd: ['sh', '-c', script], timeout_ms: 60_000 } });
      assert.equal(r.status, 200, r.text);
      return r.body as ExecResult;
    };
    /** Run an attempt that must fail: a non-zero exit, and its output for the message. */
    const refused = async (script: string, why: RegExp | null = null): Promise<ExecResult> => {
      const r = await exec(attacker.id, script);
      assert.notEqual(r.exit_code, 0, `must fail inside the machine: ${script}\n${r.stdout}${r.stderr}`);
      if (why) assert.match(r.stdout + r.stderr, why, script);
      return r;
    };
    /** The host, the server and every machine still work. */
    const allWell = async (): Promise<void> => {
      assert.equal((await t.request('GET', '/healthz')).status, 200);
      for (const [m, key] of [[attacker, keyA], [neighbour, keyA], [stranger, keyB]] as const) {
        const r = await waitFor(async () => {
          const x = await t.request('POST', `/v1/machines/${m.id}/exec`, { key, body: { cmd: ['echo', 'alive'] } });
          return x.status === 200 && x.body.stdout === 'alive\n' ? x : null;
        }, 60_000);
        assert.equal(r?.body.exit_code, 0);
      }
      assert.equal(hostname(), (await readFile('/proc/sys/kernel/hostname', 'utf8')).trim());
      assert.equal(await readFile(join(hostDir, 'secret'), 'utf8'), SECRET);
    };

    before(async () => {
      t = await TestServer.start();
      keyA = (await t.newTeamKey('escape-a')).key;
      keyB = (await t.newTeamKey('escape-b')).key;
      const create = async (key: string, config: Json = {}): Promise<Json> => {
        const r = await t.request('POST', '/v1/machines', { key, body: { isolation, config: { memory_mb: 128, disk_mb: 64, ...config } } });
        assert.equal(r.status, 201, r.text);
        return r.body;
      };
      attacker = await create(keyA);
      assert.equal(attacker.isolation, isolation);
      neighbour = await create(keyA);
      stranger = await create(keyB);
      hostDir = await mkdtemp(join(tmpdir(), 'hangar-escape-'));
      await writeFile(join(hostDir, 'secret'), SECRET);
    });
    after(async () => {
      await t.dispose();
      await rm(hostDir, { recursive: true, force: true });
    });

    it('kernel interfaces: sysrq, /proc/sys, /sys, cgroups and the kernel log are out of reach', async () => {
      await refused('echo h > /proc/sysrq-trigger');
      await refused('echo escaped > /proc/sys/kernel/hostname');
      await refused('sysctl -w kernel.panic=1');
      await refused('sysctl -w net.ipv4.ip_forward=1');
      await refused('echo 1 > /sys/kernel/mm/ksm/run');
      await refused('echo 1 > /sys/class/net/eth0/mtu');
      await refused('cg=$(find /sys/fs/cgroup -name memory.max -o -name memory.limit_in_bytes | head -1); [ -n "$cg" ] && echo 9999999999 > "$cg"');
      await refused('cat /proc/kcore >/dev/null');
      // gVisor's dmesg is its own kernel's made-up boot log, never the host's.
      if (gvisor) assert.doesNotMatch((await exec(attacker.id, 'dmesg')).stdout, /Linux version \d|hangar|runc/i);
      else await refused('dmesg');
      await refused('devmem 0x1000');
      await allWell();
    });

    it('privilege: mount, new namespaces, chroot, modules, device nodes, swap, reboot and the clock are refused', async () => {
      await refused('mount -t tmpfs none /mnt', /denied|not permitted/i);
      await refused('mount -t proc proc /mnt');
      await refused('mount --bind / /mnt');
      await refused('mount -o remount,rw /sys');
      await refused('mount -t cgroup -o memory cgroup /mnt');
      await refused('unshare -U true', /not permitted/i);
      await refused('unshare -m true', /not permitted/i);
      await refused('unshare -n true', /not permitted/i);
      await refused('nsenter -t 1 -m -n true');
      await refused('chroot / true');
      await refused('echo x > /tmp/m.ko; insmod /tmp/m.ko');
      await refused('modprobe dummy');
      if (gvisor) {
        // gVisor's /tmp is its own memory file system, where a node may be made; it reaches no device.
        await refused('mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda >/dev/null');
        await refused('mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null');
        await refused('mknod /root/sda b 8 0', /not permitted/i);
      } else {
        await refused('mknod /tmp/sda b 8 0', /not permitted/i);
        await refused('mknod /tmp/mem c 1 1', /not permitted/i);
      }
      await refused('dd if=/dev/zero of=/tmp/swap bs=1M count=1 2>/dev/null; mkswap /tmp/swap >/dev/null && swapon /tmp/swap');
      // busybox date exits 0 after its failed settimeofday: the refusal is in its message, and the clock.
      const date = await exec(attacker.id, 'date -s "2001-01-01 00:00:00"');
      assert.match(date.stderr, /not permitted/i);
      assert.ok(new Date().getUTCFullYear() > 2001 && !(await exec(attacker.id, 'date +%Y')).stdout.startsWith('2001'));
      await refused('hwclock -r');
      // reboot(2) in a pid namespace ends only the machine's init; seccomp refuses it here.
      await refused('reboot -f', /not permitted|denied/i);
      await allWell();
    });

    it('users: the machine\'s root has only the capabilities of runc\'s default set, and no_new_privs holds for setuid', async () => {
      const status = (await exec(attacker.id, 'cat /proc/self/status')).stdout;
      assert.match(status, /^CapEff:\s+0000000020000420$/m);
      // gVisor's /proc/self/status has no NoNewPrivs line; the setuid copy below shows it holds.
      if (!gvisor) assert.match(status, /^NoNewPrivs:\s+1$/m);
      assert.match(status, /^Seccomp:\s+2$/m);
      // A setuid copy of busybox gains nothing: capabilities are bounded, no_new_privs is set.
      const r = await exec(attacker.id, 'cp /bin/busybox /tmp/busybox && chmod 4755 /tmp/busybox && /tmp/busybox sh -c "grep CapEff /proc/self/status"');
      assert.match(r.stdout, /CapEff:\s+0000000020000420/);
    });

    it('processes: the host\'s processes are invisible, and ptrace reaches only the machine\'s own', async () => {
      const pids = (await exec(attacker.id, 'ls /proc | grep -E "^[0-9]+$" | wc -l')).stdout.trim();
      assert.ok(Number(pids) < 30, `a machine sees only its own processes (saw ${pids})`);
      // The host's server runs from dist/src; the pattern is written so that it does not match itself.
      await refused('grep -l "dist/sr[c]" /proc/[0-9]*/cmdline');
      await refused(`kill -0 ${process.pid} 2>/dev/null && grep -q node /proc/${process.pid}/cmdline`);
      if (gvisor) {
        // gVisor (runsc 20221219) delivers SIGKILL from inside to pid 1: a machine can end
        // itself. Shown on a machine of its own, which it ends and nothing else.
        const r = await t.request('POST', '/v1/machines', { key: keyA, body: { isolation, config: { memory_mb: 128, disk_mb: 64 } } });
        assert.equal(r.status, 201, r.text);
        const victim = r.body as Json;
        await t.request('POST', `/v1/machines/${victim.id}/exec`, { key: keyA, body: { cmd: ['sh', '-c', 'kill -9 1'] } });
        const after = await t.request('POST', `/v1/machines/${victim.id}/exec`, { key: keyA, body: { cmd: ['true'] } });
        assert.notEqual(after.status === 200 && after.body.exit_code === 0, true, 'pid 1 survived SIGKILL under gVisor: update the tier\'s documented difference');
        assert.equal((await t.request('DELETE', `/v1/machines/${victim.id}`, { key: keyA })).status, 200);
      } else {
        // init of the machine (pid 1) ignores signals from inside its pid namespace.
        await exec(attacker.id, 'kill -9 1; true');
      }
      await allWell();
    });

    it('network: no raw or packet sockets, no interface or route changes, no spoofed address', async () => {
      const gw = (await exec(attacker.id, "ip route | awk '/default/ {print $3}'")).stdout.trim();
      assert.match(gw, /^\d+\.\d+\.\d+\.\d+$/);
      await refused(`ping -c 1 -W 1 ${neighbour.private_ip}`);
      await refused(`arping -c 1 -w 1 -I eth0 ${neighbour.private_ip}`);
      // gVisor answers EACCES, EAFNOSUPPORT (no packet sockets) or ENOTTY (no such ioctl) where Linux answers EPERM.
      const noNetAdmin = gvisor ? /not permitted|denied|not supported|inappropriate ioctl/i : /not permitted/i;
      await refused('ip link add d0 type dummy', noNetAdmin);
      await refused(`ip addr add ${neighbour.private_ip}/32 dev eth0`, noNetAdmin);
      await refused('ip link set eth0 address 02:00:00:00:00:01', noNetAdmin);
      await refused('ip route add 10.99.0.0/16 dev eth0', noNetAdmin);
      await refused('ip link set eth0 promisc on', noNetAdmin);
      await refused('tunctl -t tap0');
      await refused('iptables -L 2>&1 || exit 1');
      await allWell();
    });

    it('network: the host\'s ports, the server, the team\'s other machine and another team\'s machine are unreachable', async () => {
      const gw = (await exec(attacker.id, "ip route | awk '/default/ {print $3}'")).stdout.trim();
      // A listener of the host on the bridge's own address, which machines must not reach.
      const host: Server = createServer((s) => s.end('host\n'));
      host.listen(0, gw);
      await once(host, 'listening');
      const hostPort = (host.address() as { port: number }).port;
      const apiPort = new URL(t.url).port;
      try {
        // Listeners in the other machines; the host (which the server is) reaches them, so they are real.
        for (const [m, key] of [[neighbour, keyA], [stranger, keyB]] as const) {
          const p = await t.request('POST', `/v1/machines/${m.id}/processes`, { key, body: { cmd: ['nc', '-ll', '-p', '7000', '-e', 'echo', 'inside'] } });
          assert.equal(p.status, 201, p.text);
        }
        for (const m of [neighbour, stranger]) {
          await waitFor(async () => {
            const { Socket } = await import('node:net');
            return new Promise<boolean | null>((resolve) => {
              const s = new Socket();
              s.setTimeout(2000, () => (s.destroy(), resolve(null)));
              s.on('error', () => resolve(null));
              s.connect(7000, m.private_ip, () => undefined);
              s.on('data', (d) => (s.destroy(), resolve(d.toString().includes('inside') ? true : null)));
            });
          }, 30_000);
        }
        const reach = (ip: string, port: number | string): Promise<ExecResult> => exec(attacker.id, `echo | nc -w 2 ${ip} ${port}`);
        for (const [ip, port] of [
          [gw, hostPort],
          [gw, apiPort],
          [gw, 22],
          [neighbour.private_ip, 7000],
          [stranger.private_ip, 7000],
        ] as const) {
          const r = await reach(ip, port);
          assert.ok(r.exit_code !== 0 && !/host|inside/.test(r.stdout), `${ip}:${port} must be unreachable from a machine: ${JSON.stringify(r)}`);
        }
        // The machine's own 127.0.0.1 is its own loopback, not the host's (where the API listens).
        const loop = await exec(attacker.id, `echo | nc -w 2 127.0.0.1 ${apiPort}`);
        assert.notEqual(loop.exit_code, 0);
      } finally {
        host.close();
      }
      await allWell();
    });

    it('the metadata address 169.254.169.254 is dropped on the host before any rule accepts it (read from the rules: no packet is sent outside)', async () => {
      const hex = t.server.settings.instancePrefix.replace(/^hangar-/, '');
      const { execFile } = await import('node:child_process');
      const rules = await new Promise<string>((resolve, reject) => execFile('iptables-save', ['-t', 'filter'], (e, out) => (e ? reject(e) : resolve(out))));
      const fwd = rules.split('\n').filter((l) => l.startsWith(`-A HANGAR-${hex}-FWD `));
      const drop = fwd.findIndex((l) => l.includes('-d 169.254.0.0/16') && l.endsWith('-j DROP'));
      const accept = fwd.findIndex((l) => l.endsWith('-j ACCEPT') && !l.includes('ESTABLISHED'));
      assert.ok(drop >= 0 && accept > drop, fwd.join('\n'));
      // Outbound policies only return or drop; the only accepts elsewhere are private networks' (one
      // member's address each, inside the machines' subnet): none can accept the link-local range.
      const policy = rules.split('\n').filter((l) => l.startsWith(`-A HANGAR-${hex}-`) && !l.startsWith(`-A HANGAR-${hex}-FWD `) && !l.startsWith(`-A HANGAR-${hex}-IN `));
      for (const l of policy.filter((x) => x.endsWith('-j ACCEPT'))) {
        assert.match(l, /-d \d+\.\d+\.\d+\.\d+\/32 /, l);
        assert.doesNotMatch(l, /169\.254\./, l);
      }
    });

    it('files API and tar: symlinks and .. resolve inside the machine, never to the host', async () => {
      const secretPath = join(hostDir, 'secret');
      await exec(attacker.id, `ln -s ${secretPath} /root/to-secret; ln -s / /root/to-root; ln -s ../../../../../../../.. /root/up; ln -s ${hostDir} /root/to-dir`);
      for (const path of ['/root/to-secret', `/root/to-root${secretPath}`, `/root/up${secretPath}`, `/../../../..${secretPath}`, '/root/to-dir/secret']) {
        const r = await t.request('GET', `/v1/machines/${attacker.id}/files?path=${encodeURIComponent(path)}`, { key: keyA });
        assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status} ${r.text}`);
        assert.ok(!r.text.includes(SECRET), path);
      }
      // Writes through a symlink land inside the machine (its /tmp/hangar-escape-…), never on the host.
      const w = await fetch(`${t.url}/v1/machines/${attacker.id}/files?path=${encodeURIComponent('/root/to-dir/written')}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/octet-stream' },
        body: 'through a link',
      });
      assert.ok(w.status === 200 || w.status >= 400, String(w.status));
      await w.arrayBuffer();
      assert.equal(existsSync(join(hostDir, 'written')), false, 'a write through a symlink reached the host');
      // A hard link to the read-only agent binary crosses a mount: refused; the binary cannot be changed.
      await refused('ln /.hangar/bin/hangar-agent /root/agent-link');
      await refused('echo x >> /.hangar/bin/hangar-agent');
      // A tar with .. entries, an absolute name and a symlink followed by a file through it.
      const tar = tarOf([
        { name: `../../../../../../..${hostDir}/tar-dotdot`, body: 'dotdot' },
        { name: `${hostDir}/tar-absolute`, body: 'absolute' },
        { name: 'evil', linkTo: hostDir },
        { name: 'evil/tar-through-link', body: 'through' },
      ]);
      await exec(attacker.id, 'mkdir -p /root/unpack');
      const up = await fetch(`${t.url}/v1/machines/${attacker.id}/files/archive?path=/root/unpack`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/x-tar' },
        body: new Uint8Array(tar),
      });
      await up.arrayBuffer();
      for (const f of ['tar-dotdot', 'tar-absolute', 'tar-through-link']) assert.equal(existsSync(join(hostDir, f)), false, `${f} reached the host (answer ${up.status})`);
      // A tar of a directory holding a symlink to the host's secret carries the link, not the secret.
      const down = await fetch(`${t.url}/v1/machines/${attacker.id}/files/archive?path=/root`, { headers: { authorization: `Bearer ${keyA}` } });
      const bytes = Buffer.from(await down.arrayBuffer());
      assert.equal(down.status, 200);
      assert.equal(bytes.includes(SECRET), false, 'a download tar carried the host\'s secret');
      await allWell();
    });

    it('huge argv, env, bodies and headers: a clear refusal, and the server keeps answering', async () => {
      const big = 'x'.repeat(3 * 1024 * 1024);
      const argv = await t.request('POST', `/v1/machines/${attacker.id}/exec`, { key: keyA, body: { cmd: ['echo', big] } });
      assert.ok(argv.status === 413 || argv.status === 400 || (argv.status === 200 && argv.body.exit_code !== 0), `${argv.status} ${argv.text.slice(0, 200)}`);
      const env = await t.request('POST', `/v1/machines/${attacker.id}/exec`, { key: keyA, body: { cmd: ['true'], env: { HUGE: big } } });
      assert.ok(env.status === 413 || env.status === 400 || (env.status === 200 && env.body.exit_code !== 0), `${env.status} ${env.text.slice(0, 200)}`);
      const many = Array.from({ length: 20_000 }, (_, i) => `a${i}`);
      const argc = await t.request('POST', `/v1/machines/${attacker.id}/exec`, { key: keyA, body: { cmd: ['true', ...many] } });
      assert.ok(argc.status < 500, `${argc.status} ${argc.text.slice(0, 200)}`);
      const header = await t.request('GET', `/v1/machines/${attacker.id}`, { key: keyA, headers: { 'x-pad': 'y'.repeat(64 * 1024) } }).catch(() => ({ status: 431 }));
      assert.ok(header.status === 431 || header.status === 400, String(header.status));
      await allWell();
    });

    /**
     * gVisor: the pids and memory limits are on the cgroup of gVisor's own kernel, so a bomb
     * that reaches one ends the whole machine (the sentry cannot make another thread, or the
     * host's OOM killer takes it) instead of one process inside. Such a bomb runs in a
     * machine of its own, which it may end; the attacker, the neighbours and the host must not notice.
     */
    const bombInOwnMachine = async (script: string, timeoutMs = 60_000): Promise<ExecResult | null> => {
      const c = await t.request('POST', '/v1/machines', { key: keyA, body: { isolation, config: { memory_mb: 128, disk_mb: 64 } } });
      assert.equal(c.status, 201, c.text);
      const id = (c.body as Json).id as string;
      try {
        const r = await t.request('POST', `/v1/machines/${id}/exec`, { key: keyA, body: { cmd: ['sh', '-c', script], timeout_ms: timeoutMs } });
        // The machine ended under the bomb: the exec is answered with the kill (137) or refused.
        return r.status === 200 ? (r.body as ExecResult) : null;
      } finally {
        assert.equal((await t.request('DELETE', `/v1/machines/${id}`, { key: keyA })).status, 200);
      }
    };

    it('bombs: fork, memory, disk, inodes, processes and sockets stop at the machine\'s limits', async () => {
      // Fork bomb: the pids limit stops it; killing it leaves a working machine (gVisor: it ends its machine).
      const forkBomb = 'b() { b | b & }; (b) >/dev/null 2>&1 & sleep 3; kill -9 -1 2>/dev/null; true';
      if (gvisor) await bombInOwnMachine(forkBomb);
      else await exec(attacker.id, forkBomb).catch(() => undefined);
      await allWell();
      // Memory: a shell that grows past memory_mb (128 MiB) is killed by the machine's OOM killer. gVisor: the
      // machine may end, or (measured: every time here) stall against the limit until the exec's timeout; 15 s shows it.
      const memBomb = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived ${#x}';
      const mem = gvisor ? await bombInOwnMachine(memBomb, 15_000) : await exec(attacker.id, memBomb);
      assert.ok(mem === null || (mem.exit_code !== 0 && !mem.stdout.includes('survived')), JSON.stringify({ ...mem, stdout: mem?.stdout.slice(0, 100) }));
      await allWell();
      // Disk: the machine's 64 MiB image fills, the host's disk does not.
      const disk = await exec(attacker.id, 'dd if=/dev/zero of=/root/fill bs=1M count=256 2>&1; echo; df -m /root | tail -1');
      assert.match(disk.stdout + disk.stderr, /No space left on device/);
      await exec(attacker.id, 'rm -f /root/fill');
      // Inodes: files until the image has no inode left.
      // (echo, a regular built-in: a failed redirection of the special built-in `:` would end the shell.)
      const inodes = await exec(attacker.id, 'mkdir -p /root/i && cd /root/i && i=0; while echo -n > f$i 2>/dev/null; do i=$((i+1)); [ $i -gt 200000 ] && break; done; echo made $i');
      const made = Number(/made (\d+)/.exec(inodes.stdout)?.[1]);
      assert.ok(made > 0 && made < 200_000, inodes.stdout);
      await exec(attacker.id, 'rm -rf /root/i');
      // Processes: a flood of short sleepers stops at the pids limit (512); the flood runs in a
      // subshell (ash ends a shell that cannot fork) and reports through files, with built-ins only.
      const flood = '( i=0; while [ $i -lt 2000 ]; do sleep 5 >/dev/null 2>&1 & i=$((i+1)); echo $i > /tmp/n; done ) 2>/tmp/flood.err; read n < /tmp/n; echo started $n; read e < /tmp/flood.err; echo "$e"';
      if (gvisor) {
        // The flood ends its machine before 2,000 processes run (or stops at the limit).
        const procs = await bombInOwnMachine(flood);
        assert.ok(procs === null || procs.exit_code !== 0 || Number(/started (\d+)/.exec(procs.stdout)?.[1]) < 2000, JSON.stringify(procs));
      } else {
        const procs = await exec(attacker.id, flood);
        const started = Number(/started (\d+)/.exec(procs.stdout)?.[1] ?? 'NaN');
        assert.ok(started > 0 && started < 2000, procs.stdout + procs.stderr);
        assert.match(procs.stdout, /can't fork/);
      }
      await allWell();
    });
  });
}
