"""Message conversions: sensor_msgs/Image <-> numpy, occupancy grid -> PointCloud2 and markers.

Every name is importable from here; the concerns live in the modules below:

* :mod:`.images` — Image / CompressedImage <-> uint8 arrays, masks, validation errors;
* :mod:`.clouds` — grid -> occupied-voxel cloud, dense grid cloud (and back), MarkerArray, the
  three output messages of one reconstruction;
* :mod:`.objects` — several placed objects -> one cloud with an ``instance`` field, markers
  (voxels, mesh, box, label per object), PoseArray;
* :mod:`.object_messages` — every message of one view set's objects, for node and bag tool;
* :mod:`.optional_outputs` — vision_msgs detections and MoveIt collision objects where those
  packages import, and the notice where they do not;
* :mod:`.stamps` — ``builtin_interfaces/Time`` <-> nanoseconds;
* :mod:`.libraries` — ``cv_bridge`` / ``sensor_msgs_py`` where installed, else the own code
  (identical results; the ``backend`` argument chooses).
"""

from .clouds import (CLOUD_FIELD_NAMES, MARKER_NAMESPACE, ReconstructionMessages, clear_markers,
                     dense_cloud_to_grid, grid_to_cloud, grid_to_dense_cloud, grid_to_markers,
                     occupancy_fields, points_to_cloud, probability_colours,
                     reconstruction_messages)
from .images import (COMPRESSED_FORMATS, ImageConversionError, OversizedImageError,
                     UnsupportedEncodingError,
                     array_to_compressed, array_to_image, check_image, compressed_to_array,
                     compressed_topic, frame_to_array, image_to_array, labels_to_array,
                     labels_to_image, mask_to_array)
from .libraries import CONVERSION_BACKENDS, library_available
from .object_messages import ObjectSetMessages, object_set_messages
from .objects import (OBJECT_CLOUD_FIELD_NAMES, OBJECT_NAMESPACES, object_cloud_fields,
                      object_meshes, objects_to_cloud, objects_to_markers,
                      objects_to_pose_array)
from .optional_outputs import (OPTIONAL_OUTPUTS, OptionalOutputs, objects_to_collision_objects,
                               objects_to_detections, unavailable_reason)
from .stamps import ns_to_stamp, stamp_to_ns

__all__ = [
    'CLOUD_FIELD_NAMES', 'COMPRESSED_FORMATS', 'CONVERSION_BACKENDS', 'ImageConversionError',
    'OversizedImageError',
    'MARKER_NAMESPACE', 'OBJECT_CLOUD_FIELD_NAMES', 'OBJECT_NAMESPACES', 'OPTIONAL_OUTPUTS',
    'OptionalOutputs', 'ReconstructionMessages', 'UnsupportedEncodingError',
    'array_to_compressed', 'array_to_image', 'check_image', 'clear_markers',
    'compressed_to_array', 'compressed_topic', 'dense_cloud_to_grid', 'frame_to_array',
    'grid_to_cloud', 'grid_to_dense_cloud', 'grid_to_markers', 'image_to_array',
    'labels_to_array', 'labels_to_image', 'ObjectSetMessages', 'object_set_messages',
    'library_available', 'mask_to_array', 'ns_to_stamp', 'object_cloud_fields',
    'object_meshes', 'objects_to_cloud', 'objects_to_collision_objects',
    'objects_to_detections', 'objects_to_markers', 'objects_to_pose_array', 'occupancy_fields',
    'points_to_cloud',
    'probability_colours', 'reconstruction_messages', 'stamp_to_ns', 'unavailable_reason',
]
