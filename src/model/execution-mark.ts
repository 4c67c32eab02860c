/** mocra's ExecutionMark: which module and step produced a message (multi-step modules). */
export interface ExecutionMark {
  moduleId: string | null;
  stepIdx: number | null;
  epoch: number | null;
  stayCurrentStep: boolean;
}

export function executionMark(init: Partial<ExecutionMark> = {}): ExecutionMark {
  return { moduleId: null, stepIdx: null, epoch: null, stayCurrentStep: false, ...init };
}
