import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { whileHeartbeating } from '../../activities/heartbeat.js';
import { askUntilValid, readJsonAnswer, required } from '../../activities/provider-calls.js';
import type { Providers } from '../../providers/index.js';
import { aiItemNames, type AiJobRequest, type AiJobResult } from './declaration.js';
import { aiAnswerSchemas, readAiAnswer } from './generation-schemas.js';

export interface GenerateAiItemsInput {
  jobId: string;
  request: AiJobRequest;
}

const responseJsonSchemas = Object.fromEntries(
  Object.entries(aiAnswerSchemas).map(([type, schema]) => [type, z.toJSONSchema(schema)]),
);

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

export function createAiGenerationActivities({ providers }: { providers: Providers }) {
  return {
    /**
     * Asks the LLM for the job's items with structured output and checks the answer with the
     * same zod schema the JSON schema came from. The call heartbeats while it waits, so a
     * cancellation aborts it within seconds through the activity's cancellation signal.
     */
    async generateAiItems({ jobId, request }: GenerateAiItemsInput): Promise<AiJobResult> {
      const generator = required(providers.textGenerator, 'AI generation');
      const context = Context.current();
      const { systemInstruction, prompt } = aiPrompt(request);
      const what = `${aiItemNames[request.type]} generation`;
      const items = await whileHeartbeating((beat) =>
        askUntilValid({
          jobId,
          what,
          ask: (round) => {
            beat({ round });
            return generator.generateJson({
              what,
              systemInstruction,
              prompt,
              responseJsonSchema: responseJsonSchemas[request.type],
              signal: context.cancellationSignal,
            });
          },
          read: (text) => readJsonAnswer(text, (json) => readAiAnswer(request, json)),
        }),
      );
      return { items, model: generator.model };
    },
  };
}

export type AiActivities = ReturnType<typeof createAiGenerationActivities>;
