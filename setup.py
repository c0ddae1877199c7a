"Package setup for nbdev 2's settings.ini layout, read with configparser (no pkg_resources)."
from configparser import ConfigParser
import shlex
from setuptools import setup, find_packages

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
lic = licenses.get(cfg['license'])
requirements = shlex.split(cfg.get('requirements', ''))
dev_requirements = shlex.split(cfg.get('dev_requirements', ''))
console_scripts = cfg.get('console_scripts', '').split()

setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=lic[0] if lic else cfg['license'],
    classifiers=['Programming Language :: Python :: 3.11'] + ([f'License :: {lic[1]}'] if lic else []),
    keywords=cfg['keywords'],
    python_requires=f">={cfg['min_python']}",
    packages=find_packages(include=[cfg['lib_path'], f"{cfg['lib_path']}.*"]),
    include_package_data=True,
    package_data={cfg['lib_path']: ['templates/*.ipynb']},  # the report template, a copy of nbs/backtest.ipynb
    install_requires=requirements,
    extras_require={'dev': dev_requirements},
    entry_points={'console_scripts': console_scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    zip_safe=False,
)
