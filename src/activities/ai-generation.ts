import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { aiAnswerSchemas, readAiAnswer } from '../jobs/ai-generation-schemas.js';
import {
  aiItemNames,
  aiPrompt,
  type AiJobRequest,
  type AiJobResult,
} from '../jobs/ai-generation.js';
import type { Providers } from '../providers/index.js';
import { whileHeartbeating } from './heartbeat.js';
import { askUntilValid, readJsonAnswer, required } from './provider-calls.js';

export interface GenerateAiItemsInput {
  jobId: string;
  request: AiJobRequest;
}

const responseJsonSchemas = Object.fromEntries(
  Object.entries(aiAnswerSchemas).map(([type, schema]) => [type, z.toJSONSchema(schema)]),
);

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
