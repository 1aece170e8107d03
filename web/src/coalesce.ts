// A read that many events ask for at once: calls while it runs make one more read after it, not
// one each (a list redrawn on every event of a busy VM would otherwise read it many times over).
export class CoalescedRead {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly read: () => Promise<void>) {}

  async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.read();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
    if (this.again) {
      this.again = false;
      await this.run();
    }
  }
}
