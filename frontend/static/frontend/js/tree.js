// Walking a workflow's decision tree: the same document the server validates against, as the
// workflow API serves it (each answer with its vote column).

export class TreeWalk {
  constructor(tree) {
    this.tree = tree;
    this.byKey = new Map(tree.questions.map((q) => [q.key, q]));
    this.steps = []; // [{question, answer}] in the order answered
    this.current = tree.first;
    this.depthCache = new Map();
  }

  get question() { return this.current ? this.byKey.get(this.current) : null; }
  get finished() { return this.current === null; }

  choose(answerKey) {
    const answer = this.answer(this.current, answerKey);
    if (!answer) throw new Error(`'${answerKey}' is not an answer of '${this.current}'`);
    this.steps.push({ question: this.current, answer: answer.key });
    this.current = answer.next ?? null;
    return answer;
  }

  // Undo the last answer; returns the answer undone so the UI can highlight it.
  back() {
    const last = this.steps.pop();
    if (!last) return null;
    this.current = last.question;
    return last.answer;
  }

  annotations() { return this.steps.map((s) => ({ ...s })); }

  answer(questionKey, answerKey) {
    return this.byKey.get(questionKey)?.answers.find((a) => a.key === answerKey) ?? null;
  }

  label(questionKey, answerKey) {
    return this.answer(questionKey, answerKey)?.label ?? answerKey;
  }

  // Longest number of questions still to answer from `key` (the tree is acyclic).
  remaining(key) {
    if (key === null || key === undefined) return 0;
    if (!this.depthCache.has(key)) {
      const question = this.byKey.get(key);
      this.depthCache.set(key, 1 + Math.max(...question.answers.map((a) => this.remaining(a.next ?? null))));
    }
    return this.depthCache.get(key);
  }

  progress() {
    const done = this.steps.length;
    const total = done + this.remaining(this.current);
    return { done, total, fraction: total ? done / total : 1 };
  }
}
