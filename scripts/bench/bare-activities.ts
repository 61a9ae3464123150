export const bareActivities = {
  /** Does nothing: what is measured is the orchestration around it. */
  async bareStep({ step }: { step: number }): Promise<number> {
    return step;
  },
};
