// A value bound for the extent of a synchronous call: set around `fn`, restored after it, even
// when it throws. Data-parallel training uses it to hand each device's step the exchange its
// batch norms and optimizers go through, without threading it through every module.
export class Context<T> {
  constructor(private value: T) {}

  get(): T {
    return this.value;
  }

  run<R>(value: T, fn: () => R): R {
    const previous = this.value;
    this.value = value;
    try {
      return fn();
    } finally {
      this.value = previous;
    }
  }
}
