// One screen: its heading (focused when the screen opens, so screen readers announce it) and body.
import { useEffect, useRef, type ReactNode } from "react";

type Props = { title: string; children: ReactNode; focusHeading?: boolean; intro?: ReactNode };

export function Page({ title, children, focusHeading = true, intro }: Props) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · HealthHash`;
    if (focusHeading) heading.current?.focus();
  }, [title, focusHeading]);
  return (
    <section className="page" aria-labelledby="page-title">
      <h1 id="page-title" ref={heading} tabIndex={-1}>
        {title}
      </h1>
      {intro ? <p className="intro">{intro}</p> : null}
      {children}
    </section>
  );
}
