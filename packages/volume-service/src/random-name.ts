import { randomBytes } from 'node:crypto';

/**
 * moby's `stringid.GenerateRandomID`: 64 lowercase hex characters whose 12-character short form is
 * never all digits (it would read as a number).
 */
export function generateVolumeName(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^[0-9]{12}/.test(id)) return id;
  }
}
