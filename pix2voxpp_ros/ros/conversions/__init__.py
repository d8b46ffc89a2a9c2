"""Message conversions: sensor_msgs/Image <-> numpy, occupancy grid -> PointCloud2 and markers.

Every name is importable from here; the concerns live in the modules below:

* :mod:`.images` — Image / CompressedImage <-> uint8 arrays, masks, validation errors;
* :mod:`.clouds` — grid -> occupied-voxel cloud, dense grid cloud (and back), MarkerArray, the
  three output messages of one reconstruction;
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
                     compressed_topic, frame_to_array, image_to_array, mask_to_array)
from .libraries import CONVERSION_BACKENDS, library_available
from .stamps import ns_to_stamp, stamp_to_ns

__all__ = [
    'CLOUD_FIELD_NAMES', 'COMPRESSED_FORMATS', 'CONVERSION_BACKENDS', 'ImageConversionError',
    'OversizedImageError',
    'MARKER_NAMESPACE', 'ReconstructionMessages', 'UnsupportedEncodingError',
    'array_to_compressed', 'array_to_image', 'check_image', 'clear_markers',
    'compressed_to_array', 'compressed_topic', 'dense_cloud_to_grid', 'frame_to_array',
    'grid_to_cloud', 'grid_to_dense_cloud', 'grid_to_markers', 'image_to_array',
    'library_available', 'mask_to_array', 'ns_to_stamp', 'occupancy_fields', 'points_to_cloud',
    'probability_colours', 'reconstruction_messages', 'stamp_to_ns',
]
