import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { FailureCode } from '../../src/jobs/failures.js';
import { toJobError } from '../../src/workflows/job-tracker.js';

/** An activity's failure as a workflow receives it: the ApplicationFailure is its cause. */
function activityFailed(cause: ApplicationFailure): ActivityFailure {
  return new ActivityFailure(
    'Activity task failed',
    'echoMessage',
    '1',
    RetryState.MAXIMUM_ATTEMPTS_REACHED,
    'worker',
    cause,
  );
}

describe("a job's error from the step that failed it", () => {
  it('names an activity no worker that took it registers, without the list of all the others', () => {
    const error = toJobError(
      activityFailed(
        ApplicationFailure.create({
          type: 'NotFoundError',
          message:
            'Activity function echoMessage is not registered on this Worker, available activities: ["recordJobUpdate","registerJob"]',
        }),
      ),
    );
    assert.deepEqual(error, {
      code: FailureCode.JOB_FAILED,
      message:
        'A step is missing from the worker that took it: Activity function echoMessage is not registered on this Worker',
    });
  });

  it('keeps the message of a code the job declares, and hides that of an unknown failure', () => {
    assert.deepEqual(
      toJobError(
        activityFailed(
          ApplicationFailure.create({ type: FailureCode.CONTENT_FILTERED, message: 'Blocked' }),
        ),
      ),
      { code: FailureCode.CONTENT_FILTERED, message: 'Blocked' },
    );
    assert.deepEqual(
      toJobError(
        activityFailed(
          ApplicationFailure.create({ type: 'DatabaseError', message: 'relation x at 10.0.0.3' }),
        ),
      ),
      {
        code: FailureCode.JOB_FAILED,
        message:
          "A step failed unexpectedly (DatabaseError); its details are in the job's Temporal history",
      },
    );
  });
});
