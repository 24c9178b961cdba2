/** A tab of the machine page: its content, and what to stop when the user leaves it. */
export interface Tab {
  element: HTMLElement;
  dispose(): void;
}
