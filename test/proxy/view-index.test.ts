import test from 'ava';
import { ViewIndex } from '../../proxy/view-index.js';
import { settledWithin } from '../helpers/poll.js';

test('a wait for an index the view has reached ends at once', async (t) => {
  const view = new ViewIndex(60_000);
  view.reached(7);
  t.true(await settledWithin(view.until(7)));
  t.true(await settledWithin(view.until(3)));
  t.is(view.current, 7);
});

test('a wait for an index ahead ends when the view reaches it, not before', async (t) => {
  const view = new ViewIndex(60_000);
  view.reached(5);
  const waiting = view.until(9);
  view.reached(8);
  t.false(await settledWithin(waiting), 'still behind');
  view.reached(10);
  t.true(await settledWithin(waiting));
});

test('a wait for an index the view never reaches ends once the longest wait ran out', async (t) => {
  const view = new ViewIndex(20);
  view.reached(1);
  await view.until(2);
  t.is(view.current, 1, 'ended without the view reaching it');
});

test('closing ends every wait', async (t) => {
  const view = new ViewIndex(60_000);
  const waits = [view.until(4), view.until(9)];
  view.close();
  t.true(await settledWithin(Promise.all(waits).then(() => undefined)));
});
