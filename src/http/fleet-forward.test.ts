/** Which machine a request is about, for forwarding it to the machine's host. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newUploadId, UPLOAD_ID_PATTERN, uploadHostTag, uploadIdHostTag } from '../domain/template.js';
import { buildOfRequest, machineOfRequest, poolRequestOf, uploadOfBuild } from './fleet-forward.js';

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

describe('uploads in a fleet', () => {
  it('an upload id carries its host\'s tag and keeps the id pattern', () => {
    const tag = uploadHostTag('rack1/host-7');
    assert.match(tag, /^[a-z0-9]{6}$/);
    assert.equal(uploadHostTag('rack1/host-7'), tag, 'the same host, the same tag');
    assert.notEqual(uploadHostTag('rack1/host-8'), tag);
    const id = newUploadId(tag);
    assert.match(id, UPLOAD_ID_PATTERN);
    assert.equal(uploadIdHostTag(id), tag);
    assert.notEqual(newUploadId(tag), id, 'the rest is random');
    assert.match(newUploadId(), UPLOAD_ID_PATTERN);
  });

  it('uploadOfBuild finds an image source\'s or a copy step\'s upload', () => {
    assert.equal(uploadOfBuild({ source: { image: { upload_id: 'upl_a' } } }), 'upl_a');
    assert.equal(uploadOfBuild({ source: { template: 'base' }, steps: [{ run: 'true' }, { copy: { upload_id: 'upl_b', dest: '/x' } }] }), 'upl_b');
    assert.equal(uploadOfBuild({ source: { template: 'base' }, steps: [{ run: 'true' }] }), null);
    assert.equal(uploadOfBuild({ source: { upload_id: 'upl_c' }, steps: 'nonsense' }), null);
    assert.equal(uploadOfBuild(undefined), null);
  });
});

describe('poolRequestOf', () => {
  it('a native create a warm pool could serve: its template (base by default) and config', () => {
    assert.deepEqual(poolRequestOf('/v1/machines', undefined), { template: 'base', config: {} });
    assert.deepEqual(poolRequestOf('/v1/machines', { template: 'tools', config: { memory_mb: 256 }, metadata: { a: 1 }, volumes: [] }), { template: 'tools', config: { memory_mb: 256 } });
    assert.deepEqual(poolRequestOf('/v1/machines', { isolation: 'container' }), { template: 'base', config: {} });
    assert.deepEqual(poolRequestOf('/sandboxes', { templateID: 'base', timeout: 60, metadata: { a: 'b' } }), { template: 'base', config: {} });
    assert.deepEqual(poolRequestOf('/v2/sandboxes', { templateID: 'tools', volumeMounts: [], network: {} }), { template: 'tools', config: {} });
  });

  it('none for what always starts cold, or another surface', () => {
    for (const body of [
      { snapshot_id: 'snp_a' },
      { volumes: [{ volume_id: 'vol_a', mount_path: '/data' }] },
      { network_id: 'net_a' },
      { network: { outbound: 'deny' } },
      { isolation: 'gvisor' },
      { config: { memory_mb: 'lots' } },
      { template: 7 },
    ]) {
      assert.equal(poolRequestOf('/v1/machines', body), null, JSON.stringify(body));
    }
    assert.equal(poolRequestOf('/paperspace/v1/machines', { templateId: 'base' }), null);
    for (const body of [{ templateID: 'snap_abc' }, { templateID: 'base', allow_internet_access: false }, { templateID: 'base', volumeMounts: [{ name: 'v', path: '/d' }] }, { templateID: 'base', network: { allowOut: ['1.2.3.4'] } }, {}]) {
      assert.equal(poolRequestOf('/sandboxes', body), null, JSON.stringify(body));
    }
  });
});

