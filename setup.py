"""Install the pix2voxpp_ros ament_python package (colcon on robots, pip -e in the venv)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'pix2voxpp_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=[PACKAGE, f'{PACKAGE}.*']),
    package_data={PACKAGE: ['weights/*.pth']},  # the demo weights travel with the code
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config',
         glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.xml')),
    ],
    install_requires=['setuptools'],
    # Optional inference backends: OpenVINO on CPUs (backend auto/openvino), ONNX export and
    # ONNX Runtime; without them the node runs PyTorch. Pinned in requirements.txt.
    extras_require={
        'openvino': ['openvino>=2026.4'],
        'onnx': ['onnx>=1.23', 'onnxscript>=0.7', 'onnxruntime>=1.31'],
    },
    zip_safe=True,
    maintainer='pix2voxpp_ros maintainers',
    maintainer_email='maintainers@pix2voxpp-ros.dev',
    description='Multi-view Pix2Vox++ 3D reconstruction for ROS 2',
    license='MIT',
    python_requires='>=3.10',
    # Console scripts are named pix2voxpp-<tool>, hyphenated. pix2voxpp_node and sim_camera_rig
    # are the earlier names of the node and the rig, kept as aliases for existing launch files.
    entry_points={
        'console_scripts': [
            'pix2voxpp-reconstruct = pix2voxpp_ros.cli.reconstruct:main',
            'pix2voxpp-synth = pix2voxpp_ros.cli.synth:main',
            'pix2voxpp-node = pix2voxpp_ros.ros.reconstruction_node:main',
            'pix2voxpp-sim-rig = pix2voxpp_ros.ros.sim_camera_rig:main',
            'pix2voxpp-demo = pix2voxpp_ros.ros.demo:main',
            'pix2voxpp-bag = pix2voxpp_ros.cli.bag:main',
            'pix2voxpp_node = pix2voxpp_ros.ros.reconstruction_node:main',  # alias
            'sim_camera_rig = pix2voxpp_ros.ros.sim_camera_rig:main',  # alias
        ],
    },
)
