import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A random string of lowercase letters and digits (rejection sampling: no modulo bias). */
export function randomLowerAlnum(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 252) out += ALPHABET[byte % 36];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Machine ids: `mch_` + 16 lowercase letters and digits (about 82 bits). */
export const newMachineId = (): string => `mch_${randomLowerAlnum(16)}`;
/** Team ids: `team_` + 12 lowercase letters and digits. */
export const newTeamId = (): string => `team_${randomLowerAlnum(12)}`;
/** API key record ids (not the secret): `key_` + 12 lowercase letters and digits. */
export const newKeyId = (): string => `key_${randomLowerAlnum(12)}`;

/** User ids: `usr_` + 12 lowercase letters and digits. */
export const newUserId = (): string => `usr_${randomLowerAlnum(12)}`;

/** Snapshot ids: `snap_` + 16 lowercase letters and digits. */
export const newSnapshotId = (): string => `snap_${randomLowerAlnum(16)}`;

/** Volume ids: `vol_` + 16 lowercase letters and digits. */
export const newVolumeId = (): string => `vol_${randomLowerAlnum(16)}`;

/** Startup script ids: `scr_` + 16 lowercase letters and digits. */
export const newStartupScriptId = (): string => `scr_${randomLowerAlnum(16)}`;
/** Private network ids: `net_` + 16 lowercase letters and digits. */
export const newNetworkId = (): string => `net_${randomLowerAlnum(16)}`;

export const MACHINE_ID_PATTERN = /^mch_[a-z0-9]{1,64}$/;
