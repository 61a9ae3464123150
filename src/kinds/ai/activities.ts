import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { reportHeartbeat } from '../../activities/heartbeat.js';
import { askUntilValid, readJsonAnswer, required } from '../../activities/provider-calls.js';
import { JobOutputStream } from '../../activities/job-output.js';
import { chargedModelCall, type ChargeHandoff } from '../../activities/cost-ledger.js';
import { callUnderCooldown } from '../../activities/provider-quota.js';
import type { Db } from '../../db/database.js';
import type { ProviderThrottle } from '../../jobs/provider-throttle.js';
import type { Providers } from '../../providers/index.js';
import { aiItemNames, type AiJobRequest, type AiJobResult } from './declaration.js';
import { aiAnswerSchema, maxAiAnswerChars, readAiAnswer } from './generation-schemas.js';

export interface GenerateAiItemsInput {
  jobId: string;
  request: AiJobRequest;
}

/** The instruction and the request text the model gets for a job. */
export function aiPrompt(request: AiJobRequest): { systemInstruction: string; prompt: string } {
  const { input } = request;
  const items = aiItemNames[request.type];
  const lines = [`Goal: ${input.goal}`];
  if ('subGoal' in input) lines.push(`Sub-goal: ${input.subGoal}`);
  if ('action' in input) lines.push(`Action: ${input.action}`);
  if (input.context) lines.push(`Context: ${input.context}`);
  lines.push(`Write at most ${input.maxItems} ${items}, in the language "${input.language}".`);
  return {
    systemInstruction: [
      'You help people reach their goals by breaking them down: a goal into sub-goals, a sub-goal',
      'into actions, an action into concrete tasks. Items are specific, ordered, and do not overlap.',
      'Answer with JSON only, following the schema.',
    ].join(' '),
    prompt: lines.join('\n'),
  };
}

export function createAiGenerationActivities({
  db,
  providers,
  chargeHandoff,
}: {
  db: Db;
  providers: Providers;
  chargeHandoff?: ChargeHandoff | undefined;
}) {
  return {
    /**
     * Asks the LLM for the job's items with structured output and checks the answer with the
     * same zod schema the JSON schema came from; a rejected answer goes back to the model with
     * why it was rejected, up to `answerRounds` answers. A streaming provider's answer reaches
     * the job's event log in pieces as it is written. The call heartbeats while it waits, so a
     * cancellation aborts it within seconds through the activity's cancellation signal. An
     * answer an earlier attempt of this activity was charged for (its result lost before it
     * reached Temporal) is used again, not asked for (chargedModelCall), and written to the
     * event log as a new answer, whole.
     *
     * While the model's provider cools down after a 429 (anyone's), it is not asked; a 429 to
     * this call starts the cool-down for every worker. Either way the answer is a throttle the
     * workflow waits out on a timer, so a rate limit never uses up the activity's attempts.
     */
    async generateAiItems({
      jobId,
      request,
    }: GenerateAiItemsInput): Promise<AiJobResult | ProviderThrottle> {
      const generator = required(providers.textGenerator, 'AI generation');
      const { quotas } = providers;
      const context = Context.current();
      const { systemInstruction, prompt } = aiPrompt(request);
      const what = `${aiItemNames[request.type]} generation`;
      const output = new JobOutputStream(db, jobId);
      return callUnderCooldown({ db, quotas, provider: quotas.textProvider, jobId }, async () => {
        const items = await askUntilValid({
          jobId,
          what,
          provider: generator.provider,
          ask: async (round, repair) => {
            reportHeartbeat({ round });
            await output.startAnswer();
            try {
              return await chargedModelCall(
                { db, prices: providers.prices, handoff: chargeHandoff },
                {
                  jobId,
                  kind: 'text',
                  provider: generator.provider,
                  model: generator.model,
                  round,
                  // Streamed again whole: the job's output is the answer its items come from.
                  onReused: (answer) => output.add(answer),
                },
                (onUsage) =>
                  generator.generateJson({
                    what,
                    systemInstruction,
                    prompt,
                    responseJsonSchema: z.toJSONSchema(aiAnswerSchema(request)),
                    maxAnswerChars: maxAiAnswerChars,
                    onText: (piece) => output.add(piece),
                    repair,
                    onUsage,
                    signal: context.cancellationSignal,
                  }),
              );
            } finally {
              await output.flush();
            }
          },
          read: (text) =>
            text.length > maxAiAnswerChars
              ? { problem: `the answer is longer than ${maxAiAnswerChars} characters` }
              : readJsonAnswer(text, (json) => readAiAnswer(request, json)),
        });
        return {
          items,
          model: generator.model,
          provider: generator.provider,
          notice: generator.notice,
        };
      });
    },
  };
}

export type AiActivities = ReturnType<typeof createAiGenerationActivities>;
