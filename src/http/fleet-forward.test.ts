/** Which machine a request is about, for forwarding it to the machine's host. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildOfRequest, machineOfRequest } from './fleet-forward.js';

describe('machineOfRequest', () => {
  it('finds a machine id as a whole path segment of any surface, never in the query', () => {
    assert.equal(machineOfRequest('/v1/machines/mch_abc123/exec', {}), 'mch_abc123');
    assert.equal(machineOfRequest('/paperspace/v1/machines/mch_abc123/start', {}), 'mch_abc123');
    assert.equal(machineOfRequest('/sandboxes/mch_abc123/pause', {}), 'mch_abc123');
    assert.equal(machineOfRequest('/v1/machines/mch_abc123/ports/80/mch_zzz', {}), 'mch_abc123');
    assert.equal(machineOfRequest('/v1/machines?name=mch_abc123', {}), null);
    assert.equal(machineOfRequest('/v1/machines/mch_ABC', {}), null);
    assert.equal(machineOfRequest('/v1/volumes/vol_abc', {}), null);
  });

  it('finds it in an ingress or envd host name, or in E2B\'s sandbox header', () => {
    assert.equal(machineOfRequest('/', { host: '8080-mch_abc123.machines.example.com' }), 'mch_abc123');
    assert.equal(machineOfRequest('/process.Process/Start', { host: '49983-mch_abc123.e2b.local:3000' }), 'mch_abc123');
    assert.equal(machineOfRequest('/files', { 'e2b-sandbox-id': 'mch_abc123' }), 'mch_abc123');
    assert.equal(machineOfRequest('/files', { 'e2b-sandbox-id': '../etc' }), null);
    assert.equal(machineOfRequest('/', { host: 'api.example.com' }), null);
  });
});

describe('buildOfRequest', () => {
  it('finds a template build id in its status and log paths only', () => {
    assert.equal(buildOfRequest('/v1/templates/tools/builds/bld_abc123'), 'bld_abc123');
    assert.equal(buildOfRequest('/v1/templates/tools/builds/bld_abc123/logs?follow=true'), 'bld_abc123');
    assert.equal(buildOfRequest('/v1/templates/tools/builds/bld_abc-123'), null);
    assert.equal(buildOfRequest('/v1/templates/tools?x=/builds/bld_abc123'), null);
    assert.equal(buildOfRequest('/v1/templates/bld_abc123'), null);
    assert.equal(buildOfRequest('/v1/templates/tools/builds/BLD_abc'), null);
  });
});
