/**
 * RuncRuntime against the runtime conformance suite: real runc (and CRIU when the host
 * has it) on a temporary data dir with an instance prefix of its own, so nothing it
 * makes can be mistaken for another server's; everything of that prefix must be gone at the end.
 */
import { runtimeConformance } from '../runtime.conformance.js';
import { runcFixture } from './runc-fixture.conformance.js';

runtimeConformance('runc (temp data dir)', () => runcFixture({ isolation: 'container' }));
// The server's default: each machine in a user namespace of its own (runtime/user-namespace.ts).
runtimeConformance('runc with user namespaces (temp data dir)', () => runcFixture({ isolation: 'container', userNamespaces: true }));
