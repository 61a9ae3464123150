import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActivities } from '../../src/activities/index.js';
import { jobKindRegistry, taskQueueDomainsInUse } from '../../src/kinds/index.js';
import { taskQueueDomains } from '../../src/capacity/task-queues.js';
import * as workflows from '../../src/workflows/index.js';

// Workflows that are no job of some kind: the media sweep and the job reconciler run on a
// schedule, the upload inspection for the API while it receives a vlog's files, and a ledger
// charge the database could not take in time is written by a workflow of its own.
const internalWorkflows = [
  'inspectUploadedMedia',
  'recordDeferredCharge',
  'reconcileJobProjections',
  'sweepExpiredMedia',
];

const declarations = jobKindRegistry.map(({ declaration }) => declaration);
const kinds = declarations.map(({ kind }) => kind);

describe('the job kind registry', () => {
  it('declares every job kind exactly once', () => {
    assert.equal(new Set(kinds).size, kinds.length, kinds.join(', '));
  });

  it('agrees with the workflows Temporal bundles: each kind exported, each export a kind', () => {
    const exported = Object.keys(workflows).sort();
    const registered = [
      ...declarations.map(({ workflowType }) => workflowType),
      ...internalWorkflows,
    ];
    assert.deepEqual(exported, registered.sort());
  });

  it('gives each job type to one kind, and each kind stages of rising progress', () => {
    const types = declarations.flatMap(({ jobTypes }) => jobTypes);
    assert.equal(new Set(types).size, types.length, types.join(', '));
    for (const { kind, stages } of declarations) {
      const progress = stages.map((stage) => stage.progress);
      assert.ok(progress.length > 0, kind);
      assert.deepEqual(
        progress,
        [...progress].sort((a, b) => a - b),
        kind,
      );
      assert.ok(
        progress.every((value) => value >= 0 && value < 100),
        kind,
      );
    }
  });

  it('gives each plain-JSON start route a path of its own', () => {
    const paths = jobKindRegistry.flatMap(({ startRoute }) =>
      startRoute ? [startRoute.path] : [],
    );
    assert.ok(paths.includes('/probes'));
    assert.equal(new Set(paths).size, paths.length);
  });

  it('has the worker poll every domain some kind routes an activity to', () => {
    for (const { declaration } of jobKindRegistry) {
      const domains: readonly string[] = declaration.taskQueues;
      assert.ok(domains.includes('workflows'), `${declaration.kind} runs no workflow`);
      for (const [group, policy] of Object.entries(declaration.activityPolicies) as [
        string,
        { domain: string },
      ][]) {
        assert.ok(
          domains.includes(policy.domain),
          `${declaration.kind}: ${group} runs on ${policy.domain}, which its taskQueues omit`,
        );
      }
    }
    // Today every domain has work: one the map names and nothing uses is a dead queue.
    assert.deepEqual(taskQueueDomainsInUse(), [...taskQueueDomains]);
  });

  it('registers with the worker the activities recorded histories call, each kind adding its own', () => {
    // The factories only keep their dependencies, so none are needed to read the names.
    const names = Object.keys(createActivities({} as never)).sort();
    assert.deepEqual(names, [
      'admitVideoGeneration',
      'analyzeMedia',
      'checkVideoGeneration',
      'claimJobTurn',
      'cleanupVlog',
      'deleteExpiredMedia',
      'deleteOrphanUploads',
      'describeVideo',
      'freeLeasesLeftRunning',
      'generateAiItems',
      'inspectStoredMedia',
      'listJobsAwaitingTurn',
      'reconcileJobBatch',
      'recordJobStart',
      'recordJobUpdate',
      'recordJobUpdates',
      'registerJob',
      'releaseCostHoldsLeftOpen',
      'startVideoGeneration',
      'transferVideo',
      'videoGenerationWaitersToWake',
      'writeDeferredCharge',
    ]);
  });
});
