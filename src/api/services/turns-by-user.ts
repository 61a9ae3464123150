/**
 * Work one API process runs for each user one at a time, in the order asked: the rest of a
 * user's requests wait their turn here, so that one user cannot hold every shared slot (the
 * upload inspections) while another's request waits.
 */
export class TurnsByUser {
  /** Each user's last turn asked for: the next one starts when it has ended. */
  private readonly lastTurn = new Map<string, Promise<void>>();

  async run<T>(userId: string, work: () => Promise<T>): Promise<T> {
    const before = this.lastTurn.get(userId);
    let ended!: () => void;
    const turn = new Promise<void>((resolve) => (ended = resolve));
    this.lastTurn.set(userId, turn);
    try {
      await before;
      return await work();
    } finally {
      ended();
      if (this.lastTurn.get(userId) === turn) this.lastTurn.delete(userId);
    }
  }

  /** Users with a turn running or waiting (what the map holds: none once all have ended). */
  get users(): number {
    return this.lastTurn.size;
  }
}
