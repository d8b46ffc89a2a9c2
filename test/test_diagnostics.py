"""The node's main DiagnosticStatus from its counters: hand-built counters, no node, no spin."""

from types import SimpleNamespace

from diagnostic_msgs.msg import DiagnosticStatus

from pix2voxpp_ros.ros.diagnostics import NodeStats

CONFIG = SimpleNamespace(trigger='auto', weights='demo.pth', max_frame_age_s=2.0,
                         placement='canonical', instances=False)
RECONSTRUCTOR = SimpleNamespace(device='cpu', precision='fp32', backend='torch')


def _stats() -> NodeStats:
    stats = NodeStats('pix2voxpp')
    stats.reset(['/cam0', '/cam1'])
    return stats


def _status(stats: NodeStats, *, state: str = 'active', configure_error: str = '',
            waiting: str | None = None, pending_dropped: int = 0,
            config: SimpleNamespace = CONFIG) -> DiagnosticStatus:
    return stats.reconstruction_status(
        state=state, configure_error=configure_error,
        config=None if state == 'unconfigured' else config,
        reconstructor=None if state == 'unconfigured' else RECONSTRUCTOR, threshold=0.3,
        pending_dropped=pending_dropped, waiting_for=lambda: waiting)


def _values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_counters_become_values() -> None:
    stats = _stats()
    stats.dropped(0, 'stale')
    stats.dropped(1, 'stale')
    stats.dropped(1, 'bad_image')
    stats.error('inference')
    stats.error('callback')  # not a failed reconstruction
    stats.sets_dropped(2)
    assert stats.succeeded(stamp_ns=12 * 10**9 + 5, views='3', points=40, latency_ms=90.0,
                           model_ms=60.0, breakdown={'queue_ms': 1.5})
    assert not stats.succeeded(stamp_ns=13 * 10**9, views='3', points=41, latency_ms=110.0,
                               model_ms=70.0, breakdown={'queue_ms': 2.0})
    status = _status(stats, pending_dropped=3)
    values = _values(status)
    assert status.name == 'pix2voxpp: reconstruction' and status.hardware_id == 'cpu'
    assert values['frames_dropped.stale'] == '2' and values['frames_dropped.bad_image'] == '1'
    assert values['sets_dropped'] == '5' and values['failed_reconstructions'] == '1'
    assert values['errors.callback'] == '1' and values['reconstructions'] == '2'
    assert values['last_stamp'] == '13.000000000' and values['last_points'] == '41'
    assert (values['latency_ms'], values['model_ms'], values['overhead_ms']) == (
        '110.00', '70.00', '40.00')
    assert (values['latency_ms_median'], values['model_ms_median']) == ('100.00', '65.00')
    assert values['queue_ms'] == '2.00' and values['threshold'] == '0.300'
    assert (values['trigger'], values['backend'], values['weights']) == ('auto', 'torch',
                                                                         'demo.pth')
    assert status.level == DiagnosticStatus.OK
    assert status.message.startswith('2 reconstruction(s), last ')
    assert status.message.endswith('median latency 100 ms (model 65 ms)')


def test_objects_are_counted_by_reason_in_instances_mode() -> None:
    stats = _stats()
    stats.objects(3, {'unmatched': 1, 'placement_failed': 0})
    stats.objects(2, {'unmatched': 0, 'placement_failed': 2})
    assert 'objects_published' not in _values(_status(stats))  # binary masks: no such values
    values = _values(_status(stats, config=SimpleNamespace(**{**vars(CONFIG), 'instances': True})))
    assert (values['objects_published'], values['last_objects']) == ('5', '2')
    assert (values['objects_dropped.unmatched'],
            values['objects_dropped.placement_failed']) == ('1', '2')


def test_level_and_message_say_what_is_wrong() -> None:
    stats = _stats()
    status = _status(stats, state='unconfigured')
    assert (status.level, status.message) == (DiagnosticStatus.WARN,
                                              'unconfigured: waiting for configure')
    assert _values(status)['device'] == '' and _values(status)['trigger'] == ''
    status = _status(stats, state='unconfigured', configure_error='weights: not found')
    assert (status.level, status.message) == (DiagnosticStatus.ERROR,
                                              'configure failed: weights: not found')
    status = _status(stats, state='inactive')
    assert (status.level, status.message) == (DiagnosticStatus.WARN,
                                              'inactive: not reconstructing')
    status = _status(stats, waiting='no frame from /cam1')
    assert (status.level, status.message) == (DiagnosticStatus.WARN,
                                              'waiting for views: no frame from /cam1')
    assert _status(stats).message == '0 reconstruction(s), median latency 0 ms (model 0 ms)'
    stats.failed('reconstruction failed: NaN in the output')
    status = _status(stats, waiting='no frame from /cam1')  # the failure is said first
    assert (status.level, status.message) == (
        DiagnosticStatus.ERROR, 'last reconstruction failed: NaN in the output')
