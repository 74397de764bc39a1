import { describe, expect, it } from 'vitest';
import { parseMountInfo, readMountInfo } from './mountinfo.js';

describe('parseMountInfo', () => {
  it('reads fields around optional fields and unescapes paths', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '42 27 0:39 / /var/lib/berth/volumes/with\\040space/_data rw,relatime - tmpfs tmpfs rw,size=1024k,uid=1000',
      'garbage',
      '',
    ].join('\n');
    expect(parseMountInfo(text)).toEqual([
      { mountPoint: '/mnt2', mountOptions: 'rw,noatime', fsType: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue' },
      {
        mountPoint: '/var/lib/berth/volumes/with space/_data',
        mountOptions: 'rw,relatime',
        fsType: 'tmpfs',
        source: 'tmpfs',
        superOptions: 'rw,size=1024k,uid=1000',
      },
    ]);
  });

  it.runIf(process.platform === 'linux')('reads this process mounts', async () => {
    const mounts = await readMountInfo();
    expect(mounts.some((m) => m.mountPoint === '/')).toBe(true);
  });
});
