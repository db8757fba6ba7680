"""Package metadata comes from settings.ini (nbdev 2 convention): edit there."""
import shlex
from configparser import ConfigParser

import setuptools

config = ConfigParser(delimiters=["="])
config.read("settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

setuptools.setup(
    name=cfg["lib_name"],
    version=cfg["version"],
    description=cfg["description"],
    keywords=cfg["keywords"],
    author=cfg["author"],
    author_email=cfg["author_email"],
    license="Apache-2.0",
    url=cfg["git_url"],
    packages=setuptools.find_packages(include=[cfg["lib_name"], cfg["lib_name"] + ".*"]),
    package_data={cfg["lib_name"]: cfg.get("package_data", "").split()},
    include_package_data=True,
    install_requires=shlex.split(cfg.get("requirements", "")),
    extras_require={"deepspeed": shlex.split(cfg.get("deepspeed_requirements", "")),     # --mode deepspeed, chapter 07
                    "dev": shlex.split(cfg.get("dev_requirements", ""))},
    python_requires=">=" + cfg["min_python"],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    zip_safe=False,
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Developers",
        "Natural Language :: English",
        "Programming Language :: Python :: 3",
    ],
    entry_points={
        "console_scripts": shlex.split(cfg.get("console_scripts", "")),
        "nbdev": [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d'],
    },
)
