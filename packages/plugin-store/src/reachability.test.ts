import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fakeClock, tempDir } from '../test/fake-plugin.js';
import { UnreachableMemory } from './reachability.js';

describe('UnreachableMemory', () => {
  it('refuses a marked plugin until the mark expires', async () => {
    const clock = fakeClock();
    const memory = new UnreachableMemory({ ttlMs: 5_000, clock });
    const gate = memory.gate('p', []);
    const ticket = await gate.beforeDial();
    expect(ticket.refusal).toBeUndefined();
    gate.unreachable(ticket, 'dial unix /x.sock: connect: connection refused');
    expect((await gate.beforeDial()).refusal).toBe(
      'dial unix /x.sock: connect: connection refused (remembered as unreachable: not dialled again for 5s, or until its socket or spec file changes)',
    );
    clock.advance(4_999);
    expect((await gate.beforeDial()).refusal).toMatch(/for 1s/);
    clock.advance(1);
    expect((await gate.beforeDial()).refusal).toBeUndefined();
    expect(memory.isMarked('p')).toBe(false);
  });

  it('forgets a mark when the plugin files change or the plugin answers', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'p.spec');
    await writeFile(file, 'tcp://a:1');
    const memory = new UnreachableMemory({ ttlMs: 60_000, clock: fakeClock() });
    const gate = memory.gate('p', [file]);
    gate.unreachable(await gate.beforeDial(), 'refused');
    expect((await gate.beforeDial()).refusal).toBeDefined();
    await rm(file);
    await writeFile(file, 'tcp://a:2');
    expect((await gate.beforeDial()).refusal).toBeUndefined();
    gate.unreachable(await gate.beforeDial(), 'refused');
    gate.reachable();
    expect(memory.isMarked('p')).toBe(false);
  });

  it('remembers nothing with a zero time to live', async () => {
    const memory = new UnreachableMemory({ ttlMs: 0, clock: fakeClock() });
    const gate = memory.gate('p', []);
    gate.unreachable(await gate.beforeDial(), 'refused');
    expect((await gate.beforeDial()).refusal).toBeUndefined();
  });
});
