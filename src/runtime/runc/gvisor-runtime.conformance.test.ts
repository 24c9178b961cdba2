/**
 * The gvisor tier (runsc, driven by RuncRuntime through its OCI CLI) against the runtime
 * conformance suite, on a temporary data dir with an instance prefix of its own. Only the
 * cases whose feature gVisor lacks are skipped, each with its reason; everything of the
 * prefix (runsc's state directory included) must be gone at the end.
 */
import { runtimeConformance } from '../runtime.conformance.js';
import { runcFixture } from './runc-fixture.conformance.js';

const NO_CRIU =
  'gVisor has no CRIU checkpoints, and runsc checkpoint refuses host networking ("checkpoint not supported when using hostinet"): gvisor machines are never paused, snapshotted or forked';

runtimeConformance('gvisor (runsc, temp data dir)', () =>
  runcFixture({
    isolation: 'gvisor',
    unsupported: {
      'resize: new CPU and memory limits in force, a larger disk, the processes kept; a disk never shrinks':
        'runsc has no `update`: gvisor machines are not resized (the service answers 422 UNSUPPORTED_OPERATION)',
      'pause and resume: the same process, its pid and its memory come back; the snapshot is consumed': NO_CRIU,
      'a filesystem-only pause keeps the files and restarts init on resume': NO_CRIU,
      'a live snapshot leaves the machine running; a fork from it has the processes, files and its own name': NO_CRIU,
      'revertSnapshot: a paused machine resumes as its restore point was; a bad source changes nothing': NO_CRIU,
    },
  }),
);
